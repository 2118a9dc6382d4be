//! Joining a caller's trace: a W3C `traceparent` (with its `tracestate`) from an HTTP request's
//! headers, or from an MCP request's `params._meta`, becomes the parent of the server's span
//! for the request, so a web app's trace continues through Harness into the agent's runs, model
//! calls and tool calls. Spans go to the `harness::genai` target with the others.

use std::collections::HashMap;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rmcp::model::RequestId;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A caller's trace context: `traceparent` and `tracestate`, as sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Carrier(HashMap<&'static str, String>);

impl Carrier {
    /// The context in HTTP `headers`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Carrier {
        Carrier::of(|field| headers.get(field).and_then(|v| v.to_str().ok()))
    }

    /// The context in an MCP request's `_meta`.
    pub(crate) fn from_meta(meta: &rmcp::model::MetaObject) -> Carrier {
        Carrier::of(|field| match field {
            "traceparent" => meta.get_traceparent(),
            _ => meta.get_tracestate(),
        })
    }

    fn of<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Carrier {
        Carrier(
            ["traceparent", "tracestate"]
                .into_iter()
                .filter_map(|field| Some((field, get(field)?.to_owned())))
                .collect(),
        )
    }

    /// Whether it names a parent.
    pub(crate) fn is_empty(&self) -> bool {
        !self.0.contains_key("traceparent")
    }

    /// Makes the context the parent of `span` (nothing when it names none, or is malformed).
    pub(crate) fn adopt(&self, span: &Span) {
        if self.is_empty() {
            return;
        }
        let parent = TraceContextPropagator::new().extract(self);
        // Without an OpenTelemetry layer there is no trace to join.
        let _ = span.set_parent(parent);
    }
}

impl opentelemetry::propagation::Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().copied().collect()
    }
}

/// Middleware: each `/v1` request in a server span (`POST /v1/runs`) whose parent is the
/// caller's `traceparent`.
pub(crate) async fn http_span(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        target: "harness::genai",
        "http.server",
        "otel.name" = %format_args!("{method} {path}"),
        "otel.kind" = "server",
        "http.request.method" = %method,
        "url.path" = %path,
        "http.response.status_code" = Empty,
    );
    if !span.is_disabled() {
        Carrier::from_headers(request.headers()).adopt(&span);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// The span of an MCP `tools/call` of `tool` (request `id`), under the caller's trace: the one
/// `meta` finds in `_meta`, else the one `http` finds in the HTTP request's headers (neither is
/// read when no subscriber records the span).
pub(crate) fn tools_call_span(
    tool: &str,
    id: &RequestId,
    meta: impl FnOnce() -> Carrier,
    http: impl FnOnce() -> Carrier,
) -> Span {
    let span = tracing::info_span!(
        target: "harness::genai",
        "tools/call",
        "otel.name" = %format_args!("tools/call {tool}"),
        "otel.kind" = "server",
        "otel.status_code" = Empty,
        "mcp.method.name" = "tools/call",
        "gen_ai.operation.name" = "execute_tool",
        "gen_ai.tool.name" = %tool,
        "jsonrpc.request.id" = %id,
        "error.type" = Empty,
    );
    if !span.is_disabled() {
        let meta = meta();
        if meta.is_empty() { http() } else { meta }.adopt(&span);
    }
    span
}

/// Records on a `tools/call` span that the call ended as an error result.
pub(crate) fn tool_error(span: &Span, kind: &str) {
    span.record("otel.status_code", "error");
    span.record("error.type", kind);
}
