//! Errors of the `/v1` API as RFC 9457 problem documents (`application/problem+json`): a stable
//! `type` a client can branch on, a `title`, the HTTP `status`, and a `detail` with the same
//! actionable message the CLI prints.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// What kind of problem: `urn:harness:problem:` and a name, e.g. `…:refused`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind in words.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// This occurrence, in words a person can act on.
    pub detail: String,
    /// For a refused call, the gate that refused it (`role`, `rate`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

impl Problem {
    /// A problem of kind `name` (`urn:harness:problem:NAME`) with `status`.
    pub fn new(status: StatusCode, name: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:harness:problem:{name}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            gate: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

impl From<JsonRejection> for Problem {
    /// A body that is not the JSON asked for: malformed, of the wrong shape, too large, or
    /// not sent as `application/json`.
    fn from(rejection: JsonRejection) -> Problem {
        Problem::new(
            rejection.status(),
            "invalid-body",
            "The body is not the JSON expected",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for Problem {
    /// A query string that does not fit the endpoint's parameters.
    fn from(rejection: QueryRejection) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "A query parameter is not understood",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for Problem {
    /// A path whose parameters do not parse (an approval id that is not a number).
    fn from(rejection: PathRejection) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-path",
            "A path parameter is not understood",
            rejection.body_text(),
        )
    }
}
