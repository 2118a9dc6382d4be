//! Amounts per window in the whitelist: rate limits (`rate = "10/min"`) and budgets
//! (`user_tokens = "20000/day"`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// An amount per window written as `"COUNT/UNIT"`: a rate limit (`"10/min"`, `"2/s"`) or a
/// budget (`"20000/day"` tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per window.
    pub count: u64,
    /// The window.
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {}",
            self.count,
            humantime::format_duration(self.per)
        )
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || {
            format!(
                "`{text}` is not a rate; write COUNT/UNIT such as \"10/min\", \"100/hour\" or \"2/s\""
            )
        };
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: u64 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(format!(
                "`{text}` allows no call at all; remove the tool instead"
            ));
        }
        Ok(Rate { count, per })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_or_say_how_to_write_them() {
        assert_eq!(
            "10/min".parse::<Rate>().unwrap(),
            Rate {
                count: 10,
                per: Duration::from_secs(60)
            }
        );
        assert_eq!("2 / s".parse::<Rate>().unwrap().per, Duration::from_secs(1));
        assert!(
            "10 per minute"
                .parse::<Rate>()
                .unwrap_err()
                .contains("COUNT/UNIT")
        );
        assert!("10/week".parse::<Rate>().is_err());
        assert!(
            "0/min"
                .parse::<Rate>()
                .unwrap_err()
                .contains("allows no call")
        );
    }
}
