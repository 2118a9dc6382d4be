//! Human units in the whitelist: sizes like `"64 MiB"` and durations like `"5s"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A byte count written as an integer or a string with a unit (`"64 MiB"`, `"256 KiB"`, `"1 GB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Bytes {
    /// The count as `usize`, saturating on 32-bit hosts.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().iec())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Bytes(n)),
            Raw::Text(s) => s.trim().parse::<bytesize::ByteSize>().map(|b| Bytes(b.0)).map_err(|_| {
                de::Error::custom(format!(
                    "`{s}` is not a size; write a number of bytes or a value with a unit such as \"64 MiB\" or \"256 KiB\""
                ))
            }),
        }
    }
}

/// A duration written as a string with a unit (`"5s"`, `"250ms"`, `"1m 30s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timeout(pub Duration);

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let duration = humantime::parse_duration(s.trim()).map_err(|_| {
            de::Error::custom(format!(
                "`{s}` is not a duration; write a value with a unit such as \"5s\", \"250ms\" or \"1m\""
            ))
        })?;
        if duration.is_zero() {
            return Err(de::Error::custom(
                "a timeout of zero would stop every call; use a positive duration",
            ));
        }
        Ok(Timeout(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        size: Option<Bytes>,
        time: Option<Timeout>,
    }

    fn probe(text: &str) -> Result<Probe, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn sizes_accept_units_and_integers() {
        assert_eq!(
            probe(r#"size = "64 MiB""#).unwrap().size,
            Some(Bytes(64 << 20))
        );
        assert_eq!(
            probe(r#"size = "256KiB""#).unwrap().size,
            Some(Bytes(256 << 10))
        );
        assert_eq!(probe("size = 1_000").unwrap().size, Some(Bytes(1000)));
        assert_eq!(probe(r#"size = "1 KB""#).unwrap().size, Some(Bytes(1000)));
    }

    #[test]
    fn bad_sizes_name_the_value() {
        let err = probe(r#"size = "64 parsecs""#).err().unwrap().to_string();
        assert!(err.contains("`64 parsecs` is not a size"), "{err}");
        assert!(err.contains("size"), "{err}");
    }

    #[test]
    fn durations_accept_units_and_refuse_zero_and_garbage() {
        assert_eq!(
            probe(r#"time = "5s""#).unwrap().time,
            Some(Timeout(Duration::from_secs(5)))
        );
        assert_eq!(
            probe(r#"time = "250ms""#).unwrap().time,
            Some(Timeout(Duration::from_millis(250)))
        );
        assert!(
            probe(r#"time = "0s""#)
                .err()
                .unwrap()
                .to_string()
                .contains("zero")
        );
        assert!(
            probe(r#"time = "soon""#)
                .err()
                .unwrap()
                .to_string()
                .contains("`soon` is not a duration")
        );
    }
}
