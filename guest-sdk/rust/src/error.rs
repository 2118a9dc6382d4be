//! One error type for every SDK helper, so a tool can use `?` across storage, HTTP and files.

use std::fmt;
use std::path::PathBuf;

use crate::kv;

/// Why an SDK helper failed. Each variant's message names what failed (key, URL or path).
///
/// Tools whose WIT error is `string` get `?` for free (`From<Error> for String`); a tool with
/// its own error variant writes one `impl From<harness_guest::Error> for MyError`.
#[derive(Debug)]
pub enum Error {
    /// A key-value operation failed.
    Kv {
        /// The key (or key prefix) involved.
        key: String,
        /// What the host said.
        error: kv::KvError,
    },
    /// A stored value or an HTTP body was not the JSON the tool expected.
    Json {
        /// What was being decoded or encoded: a key or a URL.
        what: String,
        /// The decoder's message.
        error: serde_json::Error,
    },
    /// An HTTP request failed before a response arrived, or its body could not be read.
    Http {
        /// The request's URL.
        url: String,
        /// Why, in words; host refusals (ungranted host, blocked address, size caps) are named.
        message: String,
    },
    /// The server answered with a status the tool treats as an error.
    Status {
        /// The request's URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A file operation failed (a path outside the tool's grants reads as not found).
    File {
        /// The path involved, as the tool passed it.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Kv { key, error } => write!(f, "storage of {key:?}: {}", kv::describe(error)),
            Error::Json { what, error } => write!(f, "JSON of {what}: {error}"),
            Error::Http { url, message } => write!(f, "HTTP {url}: {message}"),
            Error::Status { url, status } => write!(f, "HTTP {url}: status {status}"),
            Error::File { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Json { error, .. } => Some(error),
            Error::File { error, .. } => Some(error),
            Error::Kv { .. } | Error::Http { .. } | Error::Status { .. } => None,
        }
    }
}

impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let kv = Error::Kv {
            key: "ticket/7".into(),
            error: kv::KvError::QuotaExceeded,
        };
        assert_eq!(
            kv.to_string(),
            "storage of \"ticket/7\": the tool's storage quota is used up"
        );
        let status = Error::Status {
            url: "https://api.example.com/v1".into(),
            status: 503,
        };
        assert_eq!(
            String::from(status),
            "HTTP https://api.example.com/v1: status 503"
        );
        let file = Error::File {
            path: "/kb/missing.md".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(file.to_string().starts_with("/kb/missing.md: "));
    }
}
