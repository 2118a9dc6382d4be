//! Outgoing HTTP over `wasi:http`, as plain blocking calls (the async client underneath is
//! [`wstd`]'s). The host checks every request against the tool's `http` grant and may inject
//! a secret header; a refused request fails with an [`Error::Http`] that says so.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wstd::http::error::ErrorCode;

pub use wstd::http::{HeaderMap, Method};

use crate::Error;

/// Sends a `GET` to `url` and reads the whole response.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::new(Method::GET, url).send()
}

/// An HTTP request being built; [`Request::send`] sends it.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// Adds a header (sent as given; the host replaces headers it injects secrets into).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Request, Error> {
        let body = serde_json::to_vec(value).map_err(|error| Error::Json {
            what: self.url.clone(),
            error,
        })?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Bounds connecting, the first response byte, and each later gap (the grant's `timeout`
    /// still caps all three).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response body.
    pub fn send(self) -> Result<Response, Error> {
        let url = self.url.clone();
        let timeout = self.timeout;
        let request = self.into_http()?;
        let mut client = wstd::http::Client::new();
        if let Some(timeout) = timeout {
            client.set_connect_timeout(timeout);
            client.set_first_byte_timeout(timeout);
            client.set_between_bytes_timeout(timeout);
        }
        wstd::runtime::block_on(async {
            let response = client
                .send(request)
                .await
                .map_err(|error| http_error(&url, &error))?;
            let (parts, mut body) = response.into_parts();
            let body = body
                .contents()
                .await
                .map_err(|error| http_error(&url, &error))?
                .to_vec();
            Ok(Response {
                url: url.clone(),
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        })
    }

    fn into_http(self) -> Result<wstd::http::Request<Vec<u8>>, Error> {
        let mut builder = wstd::http::Request::builder()
            .method(self.method)
            .uri(&self.url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder.body(self.body).map_err(|error| Error::Http {
            url: self.url.clone(),
            message: format!("invalid request: {error}"),
        })
    }
}

/// A complete response: status, headers and body.
#[derive(Debug, Clone)]
pub struct Response {
    url: String,
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// This response if its status is 2xx, else [`Error::Status`].
    pub fn error_for_status(self) -> Result<Response, Error> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(Error::Status {
                url: self.url,
                status: self.status,
            })
        }
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|error| Error::Http {
            url: self.url.clone(),
            message: format!("the body is not UTF-8: {error}"),
        })
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| Error::Json {
            what: self.url.clone(),
            error,
        })
    }
}

fn http_error(url: &str, error: &wstd::http::Error) -> Error {
    let message = match error.downcast_ref::<ErrorCode>() {
        Some(code) => describe(code),
        None => format!("{error:#}"),
    };
    Error::Http {
        url: url.to_owned(),
        message,
    }
}

/// Words for the `wasi:http` error codes a tool meets most, host refusals first.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => {
            "denied by the host: not in the tool's http grant (scheme, host, port, path or method)"
                .into()
        }
        ErrorCode::DestinationIpProhibited => {
            "denied by the host: the name resolves to an internal address".into()
        }
        ErrorCode::DnsError(_) => "the host name could not be resolved".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "timed out connecting".into(),
        ErrorCode::ConnectionReadTimeout => "timed out waiting for the response".into(),
        ErrorCode::HttpRequestBodySize(_) => {
            "the request body is over the grant's request_body limit".into()
        }
        ErrorCode::HttpResponseBodySize(_) => {
            "the response body is over the grant's response_body limit".into()
        }
        ErrorCode::HttpResponseHeaderSectionSize(_) => {
            "the response headers are over the grant's headers limit".into()
        }
        ErrorCode::InternalError(Some(message)) => message.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_method_url_headers_and_json() {
        let request = Request::new(Method::POST, "https://api.example.com/v1/rates?base=EUR")
            .header("accept", "application/json")
            .json(&serde_json::json!({"amount": 3}))
            .unwrap()
            .into_http()
            .unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().host(), Some("api.example.com"));
        assert_eq!(request.uri().query(), Some("base=EUR"));
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(request.body(), br#"{"amount":3}"#);
    }

    #[test]
    fn a_bad_url_names_itself() {
        let error = Request::new(Method::GET, "not a url").into_http().unwrap_err();
        assert!(
            error.to_string().starts_with("HTTP not a url: invalid request"),
            "{error}"
        );
    }

    #[test]
    fn host_refusals_read_as_refusals() {
        assert!(describe(&ErrorCode::HttpRequestDenied).starts_with("denied by the host"));
        assert!(describe(&ErrorCode::DestinationIpProhibited).contains("internal address"));
    }

    #[test]
    fn statuses_outside_2xx_are_errors() {
        let response = |status| Response {
            url: "http://x/".into(),
            status,
            headers: HeaderMap::new(),
            body: b"{\"ok\": true}".to_vec(),
        };
        assert!(response(204).error_for_status().is_ok());
        let error = response(404).error_for_status().unwrap_err();
        assert_eq!(error.to_string(), "HTTP http://x/: status 404");
        let value: serde_json::Value = response(200).json().unwrap();
        assert_eq!(value["ok"], true);
    }
}
