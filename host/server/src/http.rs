//! `harness serve`: MCP over streamable HTTP at `/mcp` (legacy sessions and the stateless
//! 2026-07-28 revision, as rmcp negotiates them), plus `/healthz` and `/readyz`.
//!
//! Every `/mcp` request is authenticated: with `[clients]` in the whitelist, a
//! `Authorization: Bearer KEY` matching one client's `key_sha256` (compared in constant time),
//! whose principal and roles the calls then run for; otherwise `401` with `WWW-Authenticate`.
//! Without any client the server serves the local user only, and refuses to listen on anything
//! but a loopback address. `Origin` is checked on every request (only local origins for a
//! loopback server), and so is `Host` on a loopback server (DNS-rebinding protection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::ServeError;
use crate::api::Problem;
use crate::mcp::McpServer;

/// Largest request body `/mcp` accepts.
pub const MAX_BODY: usize = 1 << 20;

/// How long a client has to send a request's headers before its connection is closed.
pub const HEADER_READ: Duration = Duration::from_secs(10);

/// Serves `server` on `listener` until `shutdown` is cancelled: it stops accepting
/// connections, lets calls in flight finish for up to `grace`, then cancels what is left (each
/// recorded as `tool.cancelled`). Refuses to serve the local user (no `[clients]`) on an address
/// others can reach.
pub async fn serve_listener(
    server: McpServer,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), ServeError> {
    let bound = listener
        .local_addr()
        .map_err(|e| ServeError(e.to_string()))?;
    refuse_open_access(&server, bound)?;
    tracing::info!(target: "harness::serve", %bound, "serving MCP at /mcp");
    let watcher = {
        let (server, stop) = (server.clone(), shutdown.clone());
        tokio::spawn(async move { server.watch_switches(stop).await })
    };
    let leases = {
        let (server, stop) = (server.clone(), shutdown.clone());
        tokio::spawn(async move { server.keep_leases(stop).await })
    };
    // rmcp cancels its handlers when `hard` is cancelled: only after the grace period.
    let hard = CancellationToken::new();
    let grace = {
        let (shutdown, hard) = (shutdown.clone(), hard.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
            hard.cancel();
        })
    };
    let app = router(server.clone(), bound, hard.clone());
    let connections = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ);
    let served = loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, say: the next accept may succeed.
                Err(error) if is_transient(&error) => {
                    tracing::warn!(target: "harness::serve", %error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(error) => break Err(ServeError(format!("accepting connections: {error}"))),
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    };
    shutdown.cancel();
    // Idle connections close now, busy ones after their request; calls still running when the
    // grace period ends are cancelled, which ends their requests.
    let cancelled = async {
        hard.cancelled().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    tokio::select! {
        () = connections.shutdown() => {}
        () = cancelled => {}
    }
    hard.cancel();
    grace.abort();
    server.finish_calls().await;
    let _ = watcher.await;
    let _ = leases.await;
    served
}

/// Refuses to serve the local user (a whitelist without `[clients]`) on an address others can
/// reach; [`serve_listener`] checks it too, but a caller can say so before binding.
pub fn refuse_open_access(server: &McpServer, listen: SocketAddr) -> Result<(), ServeError> {
    if server.settings().clients.is_empty() && !listen.ip().is_loopback() {
        return Err(ServeError(format!(
            "{listen} is not a loopback address, and the whitelist declares no [clients]: \
             anyone who can reach it could call the tools; add a client \
             (`harness keys new NAME`) or listen on 127.0.0.1"
        )));
    }
    Ok(())
}

/// Whether accepting a connection failed for a reason that passes (the process or system is
/// out of descriptors or memory, or the peer left before it was accepted).
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, OutOfMemory};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | OutOfMemory
    ) || matches!(error.raw_os_error(), Some(23 | 24))
}

/// The routes of `server` bound to `bound`; `cancel` stops every MCP request still running.
pub fn router(server: McpServer, bound: SocketAddr, cancel: CancellationToken) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_json_response(true)
        .with_max_request_body_bytes(MAX_BODY)
        .with_cancellation_token(cancel.child_token());
    config = if bound.ip().is_loopback() {
        config
            .with_allowed_origins(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"])
            .enforce_origin_validation()
    } else {
        // Clients authenticate with keys, and a load balancer's host name is not known here.
        config.disable_allowed_hosts().enforce_origin_validation()
    };
    let auth = server.clone();
    let server_for_api = server.clone();
    let readiness = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let console = crate::console::router(
        server_for_api.clone(),
        cancel.child_token(),
        bound.ip().is_loopback(),
    );
    let (api, document) = crate::api::router(server_for_api, bound, cancel.child_token());
    Router::new()
        .route_service("/mcp", mcp)
        .merge(api)
        .layer(middleware::from_fn_with_state(auth, authenticate))
        .merge(crate::api::openapi_route(document))
        .merge(console)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(move || ready(readiness.clone())))
}

/// `/readyz`: ready while the state database answers (a shared PostgreSQL may not); `503`
/// naming the database otherwise, so a load balancer sends calls to another replica.
async fn ready(server: McpServer) -> Response {
    let gate = server.gate();
    match tokio::task::spawn_blocking(move || gate.state().ping()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(error)) => {
            tracing::warn!(target: "harness::serve", %error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {error}\n"),
            )
                .into_response()
        }
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {error}\n"),
        )
            .into_response(),
    }
}

/// Finds the client of the request's Bearer key and lets the request through for its
/// principal; with no clients declared, lets it through for the local user.
async fn authenticate(
    State(server): State<McpServer>,
    mut request: Request,
    next: Next,
) -> Response {
    let settings = server.settings();
    if settings.clients.is_empty() {
        return next.run(request).await;
    }
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let client = key.and_then(|key| {
        // Every client is compared, so the time taken does not say which key came close.
        settings
            .clients
            .values()
            .filter(|c| c.has_key(key))
            .fold(None, |found, c| found.or(Some(c)))
    });
    match client {
        Some(client) => {
            let Ok(_slot) = client.slots.clone().try_acquire_owned() else {
                let mut response = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-requests",
                    "Too many requests in flight",
                    format!(
                        "client `{}` has as many requests in flight as it may (its \
                         `concurrency`); retry shortly",
                        client.name
                    ),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            };
            request.extensions_mut().insert(client.principal.clone());
            if let Some(act_for) = client.act_for {
                request.extensions_mut().insert(act_for);
            }
            next.run(request).await
        }
        None => {
            let mut response = Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A client key is required",
                "send `Authorization: Bearer KEY` with a key of the whitelist's [clients] (see \
                 `harness keys new`)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"harness\""),
            );
            response
        }
    }
}
