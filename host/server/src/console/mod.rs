//! The operator console at `/console`: server-rendered pages where people sign in with a client
//! key, decide approvals (the paused run resumes in the server), read runs as timelines, flip
//! kill switches, and read budgets, metrics and the audit chain's state. It works without
//! JavaScript; a small script only reloads a page whose data changed.
//!
//! Every page is escaped (tool output and model text are data, never markup), served under a
//! strict Content-Security-Policy (scripts, styles and forms from this server only), and every
//! form that changes something carries the session's CSRF token and needs the role the API
//! needs for the same action.

mod approvals;
mod figures;
mod layout;
mod runs;
mod session;
mod tools;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use harness_sandbox::Sha256Digest;
use harness_sandbox::inspect::review::Review;
use tokio_util::sync::CancellationToken;

use crate::McpServer;

/// What the console's pages work with. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Console {
    server: McpServer,
    /// Fires when runs resumed from the console must stop (the end of the grace period).
    cancel: CancellationToken,
    sessions: Arc<session::Sessions>,
    /// Each tool's review against its grants, by component digest (computed once).
    reviews: Arc<Mutex<HashMap<Sha256Digest, Arc<Review>>>>,
    /// The last verification of the audit chain from the console.
    verified: Arc<Mutex<Option<figures::Verification>>>,
}

/// The console's routes over `server`; runs it resumes stop when `cancel` fires. `loopback`
/// says whether the server listens on a loopback address (for the same-origin check).
pub(crate) fn router(server: McpServer, cancel: CancellationToken, loopback: bool) -> Router {
    let console = Console {
        server,
        cancel,
        sessions: Arc::default(),
        reviews: Arc::default(),
        verified: Arc::default(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/approvals") }))
        .route(
            "/console",
            get(|| async { Redirect::to("/console/approvals") }),
        )
        .route("/console/login", get(session::form).post(session::sign_in))
        .route("/console/logout", post(session::sign_out))
        .route("/console/approvals", get(approvals::queue))
        .route("/console/approvals/version", get(approvals::version))
        .route("/console/approvals/{id}", post(approvals::decide))
        .route("/console/runs", get(runs::list))
        .route("/console/runs/{id}", get(runs::timeline_page))
        .route("/console/runs/{id}/replay", post(runs::replay))
        .route("/console/tools", get(tools::list))
        .route("/console/tools/version", get(tools::version))
        .route("/console/switches", post(tools::switch))
        .route("/console/figures", get(figures::page))
        .route("/console/audit/verify", post(figures::verify))
        .route("/console/console.css", get(stylesheet))
        .route("/console/console.js", get(script))
        .with_state(console)
        .layer(middleware::from_fn(secure_headers))
        .layer(middleware::from_fn_with_state(loopback, same_origin))
}

/// Refuses requests from other sites, as `/v1` does.
async fn same_origin(State(loopback): State<bool>, request: Request, next: Next) -> Response {
    match crate::api::foreign(loopback, request.headers()) {
        Some(problem) => problem.into_response(),
        None => next.run(request).await,
    }
}

/// The Content-Security-Policy and the other headers every console answer carries.
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("console.js"),
    )
}
