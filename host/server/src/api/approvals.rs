//! `GET /v1/approvals` and `POST /v1/approvals/{id}/approve|deny`: the human approvals calls
//! wait for, decided by a client with the `approver` role (or the local user, on a server
//! without clients).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use harness_agent::gates::Principal;
use harness_agent::state::approvals::{ApprovalRequest, DecideError};
use harness_agent::state::records::Decision;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{Api, Problem, internal, require};

/// The role a client needs to list and decide approvals.
pub const APPROVER: &str = "approver";

/// An approval, pending or decided.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalInfo {
    /// Its number.
    pub id: i64,
    /// The run (or the single call, `mcp-…`/`api-…`) it belongs to.
    pub run_id: String,
    /// `tool.function`.
    pub function: String,
    /// The arguments of the call.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// Whom the call is for.
    pub principal: String,
    /// When it was asked for (RFC 3339).
    pub requested_at: String,
    /// `approved` or `denied`, once decided.
    pub decision: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why, as they said.
    pub reason: Option<String>,
}

impl From<ApprovalRequest> for ApprovalInfo {
    fn from(request: ApprovalRequest) -> ApprovalInfo {
        ApprovalInfo {
            id: request.id,
            arguments: serde_json::from_str(&request.arguments)
                .unwrap_or(Value::String(request.arguments)),
            run_id: request.run_id,
            function: request.function,
            principal: request.principal,
            requested_at: request.requested_at,
            decision: request.decision.map(|d| d.as_str().to_owned()),
            decided_by: request.decided_by,
            reason: request.reason,
        }
    }
}

/// Which approvals to list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Listing {
    /// Decided ones too, not only those still waiting.
    #[serde(default)]
    pub all: bool,
}

/// Why a person decides as they do.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Verdict {
    /// In words; required to deny.
    #[serde(default)]
    pub reason: String,
}

/// Approvals still waiting, oldest first (`?all=true`: every approval).
#[utoipa::path(
    get,
    path = "/v1/approvals",
    tag = "approvals",
    params(Listing),
    responses(
        (status = 200, description = "The approvals", body = [ApprovalInfo]),
        (status = 403, description = "The client lacks the `approver` role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    Query(listing): Query<Listing>,
) -> Result<Json<Vec<ApprovalInfo>>, Problem> {
    require(client.as_deref(), APPROVER)?;
    let approvals = server
        .gate()
        .state()
        .approvals(listing.all)
        .map_err(internal)?;
    Ok(Json(approvals.into_iter().map(Into::into).collect()))
}

/// Approves a waiting call: the same call made again runs, once.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/approve",
    tag = "approvals",
    params(("id" = i64, Path, description = "The approval's number")),
    request_body(content = Verdict, description = "Why (optional)"),
    responses(
        (status = 200, description = "Approved", body = ApprovalInfo),
        (status = 403, description = "The client lacks the `approver` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already, or it belongs to a paused agent run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn approve(
    State(api): State<Api>,
    client: Option<Extension<Principal>>,
    Path(id): Path<i64>,
    body: Option<Json<Verdict>>,
) -> Result<Json<ApprovalInfo>, Problem> {
    let verdict = body.map(|b| b.0).unwrap_or_default();
    decide(
        &api,
        client.as_deref(),
        id,
        Decision::Approved,
        verdict.reason,
    )
}

/// Denies a waiting call: the same call made again is refused, once, with the reason.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/deny",
    tag = "approvals",
    params(("id" = i64, Path, description = "The approval's number")),
    request_body(content = Verdict, description = "Why (required)"),
    responses(
        (status = 200, description = "Denied", body = ApprovalInfo),
        (status = 400, description = "No reason given", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks the `approver` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already, or it belongs to a paused agent run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn deny(
    State(api): State<Api>,
    client: Option<Extension<Principal>>,
    Path(id): Path<i64>,
    body: Result<Json<Verdict>, JsonRejection>,
) -> Result<Json<ApprovalInfo>, Problem> {
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "reason-required",
            "A denial needs a reason",
            "send {\"reason\": \"…\"}: the caller is told why",
        ));
    }
    decide(&api, client.as_deref(), id, Decision::Denied, reason)
}

/// Records `decision` on approval `id` for `client` (the local user without one).
fn decide(
    api: &Api,
    client: Option<&Principal>,
    id: i64,
    decision: Decision,
    reason: String,
) -> Result<Json<ApprovalInfo>, Problem> {
    require(client, APPROVER)?;
    let gate = api.server.gate();
    let state = gate.state();
    let request = state
        .approval(id)
        .map_err(internal)?
        .ok_or_else(|| unknown(id))?;
    if state
        .paused_run(&request.run_id)
        .map_err(internal)?
        .is_some()
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "paused-run",
            "It belongs to a paused agent run",
            format!(
                "approval {id} belongs to the paused run {}: decide it with `harness approvals \
                 {} {id}`, which resumes the run",
                request.run_id,
                match decision {
                    Decision::Approved => "approve",
                    Decision::Denied => "deny",
                }
            ),
        ));
    }
    let by = client.map_or_else(
        || api.server.local_principal().name.clone(),
        |c| c.name.clone(),
    );
    match state.decide(id, decision, &by, &reason) {
        Ok(decided) => Ok(Json(decided.into())),
        Err(DecideError::Unknown(id)) => Err(unknown(id)),
        Err(decided @ DecideError::Decided { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "decided",
            "Decided already",
            decided.to_string(),
        )),
        Err(DecideError::State(error)) => Err(internal(error)),
    }
}

fn unknown(id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-approval",
        "No such approval",
        format!("there is no approval {id}"),
    )
}
