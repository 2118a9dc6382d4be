//! The HTTP side shared by the provider clients: one JSON POST with a timeout, the host's TLS
//! configuration, and provider errors mapped to [`ModelError`].

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::ModelError;

/// Longest provider error text kept in a [`ModelError`].
const MAX_ERROR_TEXT: usize = 500;

/// A client for one provider.
#[derive(Clone, Debug)]
pub(crate) struct JsonClient {
    http: reqwest::Client,
    provider: &'static str,
    timeout: Duration,
}

impl JsonClient {
    /// A client for `provider` whose requests time out after `timeout`.
    pub(crate) fn new(provider: &'static str, timeout: Duration) -> Result<JsonClient, ModelError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*harness_sandbox::tls::client_config()).clone())
            .timeout(timeout)
            .build()
            .map_err(|e| ModelError::Config(format!("cannot build the {provider} client: {e}")))?;
        Ok(JsonClient {
            http,
            provider,
            timeout,
        })
    }

    /// POSTs `body` to `url` with `headers` and returns the JSON answer.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: &Value,
    ) -> Result<Value, ModelError> {
        let response = self
            .http
            .post(url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(url, &e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(url, &e))?;
        if !status.is_success() {
            return Err(ModelError::Status {
                provider: self.provider.into(),
                status: status.as_u16(),
                message: error_message(&text),
                retry_after,
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| self.malformed(format!("the body is not JSON: {e}")))
    }

    /// A [`ModelError::Malformed`] from this provider.
    pub(crate) fn malformed(&self, message: impl Into<String>) -> ModelError {
        ModelError::Malformed {
            provider: self.provider.into(),
            message: message.into(),
        }
    }

    fn transport_error(&self, url: &str, error: &reqwest::Error) -> ModelError {
        if error.is_timeout() {
            ModelError::Timeout {
                provider: self.provider.into(),
                timeout: self.timeout,
            }
        } else {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            ModelError::Unreachable {
                provider: self.provider.into(),
                url: url.into(),
                message,
            }
        }
    }
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// `error.message` of a provider's JSON error body (both OpenAI's and Anthropic's shape), else
/// the start of the body.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.get("error")
            .and_then(|e| e.get("message").or(Some(e)))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = from_json.unwrap_or_else(|| body.trim().to_owned());
    if text.len() <= MAX_ERROR_TEXT {
        return text;
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_milliseconds_first_then_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        headers.insert("retry-after-ms", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(
            error_message(r#"{"error": {"message": "Rate limit reached", "type": "requests"}}"#),
            "Rate limit reached"
        );
        assert_eq!(
            error_message(
                r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(
            error_message("<html>bad gateway</html>\n"),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_message(&"é".repeat(400)).chars().count(), 251);
    }
}
