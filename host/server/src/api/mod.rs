//! `/v1`: a JSON API beside `/mcp` for services that call Harness directly (a web app's views,
//! a job queue), authenticated with the same client keys. Errors are RFC 9457 problem
//! documents ([`Problem`]); the OpenAPI 3.1 document at `/v1/openapi.json` is generated from
//! the handlers and their types.

mod approvals;
mod figures;
mod problem;
mod runs;
mod switches;
mod tools;

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use harness_agent::gates::Principal;
use harness_agent::state::StateError;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use approvals::{APPROVER, ApprovalInfo, Decided, Denial, Verdict};
pub use figures::{BudgetInfo, MetricsInfo, PromptFigures, ToolFigures};
pub use problem::Problem;
pub use runs::{
    FeedbackInfo, FeedbackRequest, RecordInfo, RunAccepted, RunDetail, RunInfo, RunPage,
    RunRequest, RunResult,
};
pub use switches::{KillReason, OPERATOR, SwitchInfo};
pub use tools::{Annotations, CallResult, ToolInfo};

use crate::mcp::McpServer;
use crate::settings::ActFor;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Harness",
        description = "Sandboxed WebAssembly tools behind capability checks, gates and an audit \
                       chain. Authenticate with `Authorization: Bearer KEY` (`harness keys new`)."
    ),
    tags(
        (name = "tools", description = "The whitelist's tool functions, and calls to them"),
        (name = "runs", description = "Agent runs, their records, and feedback on them"),
        (name = "approvals", description = "Human approvals that calls and runs wait for"),
        (name = "switches", description = "Kill switches for tools and agents"),
        (name = "figures", description = "Budgets spent and the audit log's counts")
    ),
    modifiers(&BearerKeys),
    security(("client_key" = []))
)]
struct ApiDoc;

/// Declares the client keys (`Authorization: Bearer KEY`) as the API's security scheme.
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, document: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        document
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "client_key",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("A key from `harness keys new`"))
                        .build(),
                ),
            );
    }
}

/// Documents on every operation the `401` the key check answers before any handler runs.
fn unauthorized_everywhere(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let unauthorized = ResponseBuilder::new()
        .description("No valid client key")
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("401".into())
                .or_insert_with(|| unauthorized.clone().into());
        }
    }
}

/// What the `/v1` handlers work with.
#[derive(Clone)]
struct Api {
    server: McpServer,
    /// Fires when calls still running must stop (the end of the shutdown grace period).
    cancel: CancellationToken,
}

/// The `/v1` routes over `server` bound to `bound`, whose calls stop when `cancel` fires, and
/// the OpenAPI document describing them.
pub(crate) fn router(
    server: McpServer,
    bound: SocketAddr,
    cancel: CancellationToken,
) -> (Router, utoipa::openapi::OpenApi) {
    let api = Api { server, cancel };
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tools::list))
        .routes(routes!(tools::call))
        .routes(routes!(runs::start, runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(runs::feedback))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(switches::list))
        .routes(routes!(switches::kill, switches::enable))
        .routes(routes!(figures::budgets))
        .routes(routes!(figures::metrics))
        .with_state(api.clone())
        .split_for_parts();
    unauthorized_everywhere(&mut document);
    let router = router.merge(
        Router::new()
            .route("/metrics", get(figures::prometheus))
            .with_state(api),
    );
    let loopback = bound.ip().is_loopback();
    let guarded = router
        .layer(middleware::from_fn_with_state(loopback, same_origin))
        .layer(middleware::from_fn(crate::trace::http_span));
    (guarded, document)
}

/// Refuses what a browser sends for another site: an `Origin` other than the `Host` the
/// request was sent to, and, on a loopback server, a `Host` other than a loopback name (a DNS
/// rebinding). `/mcp` gets the same from rmcp.
async fn same_origin(State(loopback): State<bool>, request: Request, next: Next) -> Response {
    match foreign(loopback, request.headers()) {
        Some(problem) => problem.into_response(),
        None => next.run(request).await,
    }
}

/// Why [`same_origin`] refuses a request with `headers`, if it does.
pub(crate) fn foreign(loopback: bool, headers: &HeaderMap) -> Option<Problem> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = header(header::HOST).unwrap_or_default();
    let host_name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    if loopback && !matches!(host_name, "localhost" | "127.0.0.1" | "[::1]") {
        return Some(Problem::new(
            StatusCode::FORBIDDEN,
            "foreign-host",
            "Not a local host name",
            format!("`Host: {host}` is not a name of this loopback server"),
        ));
    }
    let origin = header(header::ORIGIN)?;
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    (origin_host != host).then(|| {
        Problem::new(
            StatusCode::FORBIDDEN,
            "foreign-origin",
            "A request from another site",
            format!("`Origin: {origin}` is not this server ({host})"),
        )
    })
}

/// `GET /v1/openapi.json`: the document of [`router`], served without a key (it says how to
/// call the API, not what the tools are).
pub(crate) fn openapi_route(document: utoipa::openapi::OpenApi) -> Router {
    Router::new().route(
        "/v1/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document) }
        }),
    )
}

/// Refuses a client without `role`; the local user (a server without clients) may do
/// anything.
fn require(client: Option<&Principal>, role: &str) -> Result<(), Problem> {
    match client {
        Some(client) if !client.roles.contains(role) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "missing-role",
            "The client lacks a role",
            format!(
                "{} may not do this: it needs the role `{role}` in its [clients] entry",
                client.name
            ),
        )),
        _ => Ok(()),
    }
}

/// Who a request is for: the end user it names, when the client may act for its users
/// ([`ActFor`]), or else the client itself (the local user, on a server without clients);
/// with `roles` when given (each one the client holds itself), else the client's roles.
fn acting(
    server: &McpServer,
    client: Option<&Principal>,
    act_for: Option<ActFor>,
    principal: Option<String>,
    roles: Option<Vec<String>>,
) -> Result<Principal, Problem> {
    let (client, may_act) = match client {
        Some(client) => (client, act_for.is_some()),
        None => (server.local_principal(), true),
    };
    let name = match principal {
        None => client.name.clone(),
        Some(name) if name.trim().is_empty() => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-principal",
                "An empty principal",
                "`principal` names the end user; it may not be empty",
            ));
        }
        Some(name) if name != client.name && !may_act => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "may-not-act-for",
                "The client may not act for others",
                format!(
                    "{} may not act for `{name}`: add `act_for = true` to its [clients] entry",
                    client.name
                ),
            ));
        }
        Some(name) => name,
    };
    let Some(roles) = roles else {
        return Ok(Principal {
            name,
            roles: client.roles.clone(),
        });
    };
    if let Some(role) = roles.iter().find(|r| !client.roles.contains(*r)) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "role-not-held",
            "A role the client does not hold",
            format!(
                "{} cannot give `{name}` the role `{role}`: it does not hold it itself",
                client.name
            ),
        ));
    }
    Ok(Principal {
        name,
        roles: roles.into_iter().collect(),
    })
}

/// A state failure as a problem: the server's fault, said as it happened.
fn internal(error: StateError) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "state",
        "The server's state failed",
        error.to_string(),
    )
}
