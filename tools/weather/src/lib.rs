//! The weather tool: one GET to `$WEATHER_API/v1/current?city=…`. The host adds the API key
//! (a `secrets` entry in the whitelist), so the code below never handles it.

/// The API used when the whitelist grants no `WEATHER_API` value.
const DEFAULT_API: &str = "https://api.weather.example";

#[harness_guest::tool(derive = [serde::Deserialize])]
mod weather {
    use harness_guest::{http, log};

    use super::{DEFAULT_API, query_value};

    impl From<harness_guest::Error> for WeatherError {
        fn from(error: harness_guest::Error) -> WeatherError {
            WeatherError::Upstream(error.to_string())
        }
    }

    /// Asks the API for the current conditions in `city`.
    pub fn current(city: String) -> Result<Conditions, WeatherError> {
        let api = std::env::var("WEATHER_API").unwrap_or_else(|_| DEFAULT_API.into());
        let url = format!(
            "{}/v1/current?city={}",
            api.trim_end_matches('/'),
            query_value(&city)
        );
        let response = http::Request::new(http::Method::GET, &url)
            .header("accept", "application/json")
            .send()?;
        if response.status == 404 {
            return Err(WeatherError::UnknownCity(city));
        }
        let conditions: Conditions = response.error_for_status()?.json()?;
        log::info(format!("weather for {}", conditions.city));
        Ok(conditions)
    }
}

/// `value` percent-encoded for a URL query (RFC 3986 unreserved characters stay as they are).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_value("São Paulo"), "S%C3%A3o%20Paulo");
        assert_eq!(query_value("a&b=c/../d"), "a%26b%3Dc%2F..%2Fd");
    }
}
