//! Outgoing HTTP over `wasi:http`, as plain blocking calls. The host checks every request
//! against the tool's `http` grant and may inject a secret header; a refused request fails with
//! an [`Error::Http`] that says so.
//!
//! The client is a thin layer over the `wasip2` bindings rather than `wstd`'s async one: `wstd`
//! sends the body while awaiting the response and reports whichever fails first, so a request
//! the host refused surfaced as a broken body stream instead of the host's reason.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{self, ErrorCode};
use wasip2::io::streams::StreamError;

pub use http::{HeaderMap, Method};

use crate::Error;

/// Bytes per write: `wasi:io` guarantees at least this much per blocking write.
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

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
        transmit(request, timeout)
            .map_err(|message| Error::Http {
                url: url.clone(),
                message,
            })
            .map(|(status, headers, body)| Response {
                url,
                status,
                headers,
                body,
            })
    }

    fn into_http(self) -> Result<http::Request<Vec<u8>>, Error> {
        let mut builder = http::Request::builder().method(self.method).uri(&self.url);
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

/// Sends `request` through `wasi:http`, then reads the response. The host's answer to the
/// request (a refusal included) wins over a failure writing the body.
fn transmit(
    request: http::Request<Vec<u8>>,
    timeout: Option<Duration>,
) -> Result<(u16, HeaderMap, Vec<u8>), String> {
    let (parts, body) = request.into_parts();
    let entries: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let headers =
        types::Fields::from_list(&entries).map_err(|e| format!("header not accepted: {e:?}"))?;
    let outgoing = types::OutgoingRequest::new(headers);
    let method = match parts.method {
        Method::GET => types::Method::Get,
        Method::HEAD => types::Method::Head,
        Method::POST => types::Method::Post,
        Method::PUT => types::Method::Put,
        Method::DELETE => types::Method::Delete,
        Method::PATCH => types::Method::Patch,
        Method::OPTIONS => types::Method::Options,
        ref other => types::Method::Other(other.to_string()),
    };
    let scheme = match parts.uri.scheme_str() {
        Some("http") => types::Scheme::Http,
        Some("https") => types::Scheme::Https,
        Some(other) => types::Scheme::Other(other.to_owned()),
        None => return Err("the URL has no scheme (http:// or https://)".into()),
    };
    let refused = |what: &str| format!("the {what} was not accepted");
    outgoing
        .set_method(&method)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(parts.uri.authority().map(|a| a.as_str()))
        .map_err(|()| refused("host"))?;
    outgoing
        .set_path_with_query(parts.uri.path_and_query().map(|p| p.as_str()))
        .map_err(|()| refused("path"))?;
    let options = timeout.map(|timeout| {
        let options = types::RequestOptions::new();
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // Each setter fails only if the host does not support that timeout; then it has its own.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let outgoing_body = outgoing.body().map_err(|()| refused("body"))?;
    let pending = outgoing_handler::handle(outgoing, options).map_err(|code| describe(&code))?;
    let written = write_body(outgoing_body, &body);
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(describe(&code)),
        Some(Err(())) | None => return Err("the response never arrived".into()),
    };
    written?;
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers().entries() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    let body = read_body(response.consume().map_err(|()| refused("response body"))?)?;
    Ok((response.status(), headers, body))
}

fn write_body(body: types::OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    {
        let stream = body
            .write()
            .map_err(|()| "the request body was not writable".to_owned())?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
    }
    types::OutgoingBody::finish(body, None).map_err(|code| describe(&code))
}

fn read_body(body: types::IncomingBody) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| "the response body was not readable".to_owned())?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(error) => return Err(stream_error(error)),
            }
        }
    }
    drop(types::IncomingBody::finish(body));
    Ok(bytes)
}

fn stream_error(error: StreamError) -> String {
    match error {
        StreamError::Closed => "the connection closed early".into(),
        StreamError::LastOperationFailed(error) => match types::http_error_code(&error) {
            Some(code) => describe(&code),
            None => error.to_debug_string(),
        },
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
        let error = Request::new(Method::GET, "not a url")
            .into_http()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("HTTP not a url: invalid request"),
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
