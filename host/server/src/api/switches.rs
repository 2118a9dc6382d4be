//! `GET /v1/switches`, and `PUT` / `DELETE /v1/switches/{kind}/{name}`: the kill switches that
//! take a tool or an agent out of service for every process sharing the state, flipped by a
//! client with the `operator` role. MCP clients with a session hear of it (`list_changed`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use harness_agent::gates::Principal;
use harness_agent::state::switches::{Killed, Target};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Api, Problem, internal, require};

/// The role a client needs to list and flip switches.
pub const OPERATOR: &str = "operator";

/// A switch that is off.
#[derive(Debug, Serialize, ToSchema)]
pub struct SwitchInfo {
    /// `tool:NAME` or `agent:NAME`.
    pub target: String,
    /// Why, as the operator said.
    pub reason: String,
    /// Since when (RFC 3339).
    pub at: String,
}

impl From<Killed> for SwitchInfo {
    fn from(killed: Killed) -> SwitchInfo {
        SwitchInfo {
            target: killed.target,
            reason: killed.reason,
            at: killed.at,
        }
    }
}

/// Why a switch goes off.
#[derive(Debug, Deserialize, ToSchema)]
pub struct KillReason {
    /// In words: recorded, and told to the model or client that calls the tool.
    #[schema(pattern = r"\S")]
    pub reason: String,
}

/// The switches that are off.
#[utoipa::path(
    get,
    path = "/v1/switches",
    tag = "switches",
    responses(
        (status = 200, description = "The targets switched off", body = [SwitchInfo]),
        (status = 403, description = "The client lacks the `operator` role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
) -> Result<Json<Vec<SwitchInfo>>, Problem> {
    require(client.as_deref(), OPERATOR)?;
    let switches = server.gate().state().switches().map_err(internal)?;
    Ok(Json(switches.into_iter().map(Into::into).collect()))
}

/// Switches a tool (`kind` = `tools`) or an agent (`agents`) off, for `reason`.
#[utoipa::path(
    put,
    path = "/v1/switches/{kind}/{name}",
    tag = "switches",
    params(
        ("kind" = String, Path, description = "`tools` or `agents`"),
        ("name" = String, Path, description = "The tool's or agent's name in the whitelist"),
    ),
    request_body(content = KillReason),
    responses(
        (status = 200, description = "It is off", body = SwitchInfo),
        (status = 400, description = "No reason given", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks the `operator` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tool or agent", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn kill(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    Path((kind, name)): Path<(String, String)>,
    body: Result<Json<KillReason>, JsonRejection>,
) -> Result<Json<SwitchInfo>, Problem> {
    require(client.as_deref(), OPERATOR)?;
    let target = target(&server, &kind, &name)?;
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "reason-required",
            "Switching off needs a reason",
            "send {\"reason\": \"…\"}: callers are told why",
        ));
    }
    let who = who(&server, client.as_deref());
    let gate = server.gate();
    gate.state()
        .kill(&target, &reason, &who)
        .map_err(internal)?;
    server.notify_tools_changed().await;
    let killed = gate
        .state()
        .killed(&target)
        .map_err(internal)?
        .map(Into::into)
        .unwrap_or(SwitchInfo {
            target: target.key(),
            reason,
            at: String::new(),
        });
    Ok(Json(killed))
}

/// Puts a tool or an agent back in service.
#[utoipa::path(
    delete,
    path = "/v1/switches/{kind}/{name}",
    tag = "switches",
    params(
        ("kind" = String, Path, description = "`tools` or `agents`"),
        ("name" = String, Path, description = "The tool's or agent's name in the whitelist"),
    ),
    responses(
        (status = 204, description = "It is in service (whether or not it was off)"),
        (status = 403, description = "The client lacks the `operator` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tool or agent", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn enable(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    Path((kind, name)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    require(client.as_deref(), OPERATOR)?;
    let target = target(&server, &kind, &name)?;
    let who = who(&server, client.as_deref());
    if server
        .gate()
        .state()
        .enable(&target, &who)
        .map_err(internal)?
    {
        server.notify_tools_changed().await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The switch named by `kind` and `name`, if the whitelist has such a tool or agent.
fn target(server: &crate::McpServer, kind: &str, name: &str) -> Result<Target, Problem> {
    let gate = server.gate();
    let config = gate.config();
    let (target, known) = match kind {
        "tools" => (
            Target::Tool(name.to_owned()),
            config.policy().tools().contains_key(name),
        ),
        "agents" => (
            Target::Agent(name.to_owned()),
            config.agents().contains_key(name),
        ),
        other => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-switch",
                "No such switch",
                format!("`{other}` is not a kind of switch: use `tools` or `agents`"),
            ));
        }
    };
    if !known {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-switch",
            "No such switch",
            format!(
                "the whitelist {} has no [{kind}.{name}]",
                config.policy().path().display()
            ),
        ));
    }
    Ok(target)
}

/// Who flips a switch: the client's principal, or the local user.
fn who(server: &crate::McpServer, client: Option<&Principal>) -> String {
    client.map_or_else(|| server.local_principal().name.clone(), |c| c.name.clone())
}
