//! `GET /v1/approvals` and `POST /v1/approvals/{id}/approve|deny`: the human approvals calls
//! and runs wait for, decided by a client with the `approver` role (or an end user it acts
//! for; the local user, on a server without clients). The last decision a paused run waits
//! for resumes it in the server.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use harness_agent::gates::Principal;
use harness_agent::state::approvals::{ApprovalRequest, DecideError};
use harness_agent::state::records::Decision;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{Api, Problem, acting, internal, require};
use crate::runs::NotDecided;
use crate::settings::ActFor;

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
#[into_params(parameter_in = Query)]
pub struct Listing {
    /// Decided ones too, not only those still waiting.
    #[serde(default)]
    pub all: bool,
}

/// Why a person decides as they do.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// In words; required to deny.
    #[serde(default)]
    pub reason: String,
    /// The end user deciding (a client with `act_for = true` only); by default the client.
    #[schema(pattern = r"\S")]
    pub principal: Option<String>,
}

/// Why a person denies a call: the caller (or the run's model) is told.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    /// In words.
    #[schema(pattern = r"\S")]
    pub reason: String,
    /// The end user deciding (a client with `act_for = true` only); by default the client.
    #[schema(pattern = r"\S")]
    pub principal: Option<String>,
}

/// A decision taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    /// The approval, now decided.
    #[serde(flatten)]
    pub approval: ApprovalInfo,
    /// Whether it was the last decision a paused run waited for, which now goes on in the
    /// server (read it at `/v1/runs/{run_id}`).
    pub resumed: bool,
}

/// Approvals still waiting, oldest first (`?all=true`: every approval).
#[utoipa::path(
    get,
    path = "/v1/approvals",
    tag = "approvals",
    params(Listing),
    responses(
        (status = 200, description = "The approvals", body = [ApprovalInfo]),
        (status = 400, description = "`all` is not true or false", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks the `approver` role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    listing: Result<Query<Listing>, QueryRejection>,
) -> Result<Json<Vec<ApprovalInfo>>, Problem> {
    let Query(listing) = listing?;
    require(client.as_deref(), APPROVER)?;
    let approvals = server
        .gate()
        .state()
        .approvals(listing.all)
        .map_err(internal)?;
    Ok(Json(approvals.into_iter().map(Into::into).collect()))
}

/// Approves a waiting call: the same call made again runs, once; a paused run whose last
/// approval it was goes on in the server.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/approve",
    tag = "approvals",
    params(("id" = i64, Path, description = "The approval's number")),
    request_body(content = Verdict, description = "Why (optional)"),
    responses(
        (status = 400, description = "The id or the body is not understood", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Approved (a paused run whose last approval it was goes on)", body = Decided),
        (status = 403, description = "The client lacks the `approver` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "It belongs to a paused run that cannot resume in this server", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn approve(
    State(api): State<Api>,
    client: Option<Extension<Principal>>,
    act_for: Option<Extension<ActFor>>,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Result<Json<Decided>, Problem> {
    let Path(id) = id?;
    let verdict = verdict(&body)?;
    decide(
        &api,
        client.as_deref(),
        act_for.map(|e| e.0),
        id,
        Decision::Approved,
        verdict,
    )
}

/// Denies a waiting call: the same call made again is refused, once, with the reason; a
/// paused run whose last approval it was goes on in the server, its model told of the denial.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}/deny",
    tag = "approvals",
    params(("id" = i64, Path, description = "The approval's number")),
    request_body(content = Denial, description = "Why"),
    responses(
        (status = 200, description = "Denied (a paused run whose last approval it was goes on, told of the denial)", body = Decided),
        (status = 400, description = "No reason given, or the id or body is not understood", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks the `approver` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "It belongs to a paused run that cannot resume in this server", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn deny(
    State(api): State<Api>,
    client: Option<Extension<Principal>>,
    act_for: Option<Extension<ActFor>>,
    id: Result<Path<i64>, PathRejection>,
    body: Bytes,
) -> Result<Json<Decided>, Problem> {
    let Path(id) = id?;
    let verdict = verdict(&body)?;
    if verdict.reason.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "reason-required",
            "A denial needs a reason",
            "send {\"reason\": \"…\"}: the caller is told why",
        ));
    }
    decide(
        &api,
        client.as_deref(),
        act_for.map(|e| e.0),
        id,
        Decision::Denied,
        verdict,
    )
}

/// Records `decision` on approval `id` by `client` (or the end user it acts for; the local
/// user without a client) and, when it was the last decision a paused run waited for,
/// resumes the run in the server.
fn decide(
    api: &Api,
    client: Option<&Principal>,
    act_for: Option<ActFor>,
    id: i64,
    decision: Decision,
    verdict: Verdict,
) -> Result<Json<Decided>, Problem> {
    require(client, APPROVER)?;
    let by = acting(&api.server, client, act_for, verdict.principal, None)?;
    let (decided, resumed) = api
        .server
        .decide_approval(id, decision, &by.name, &verdict.reason, &api.cancel)
        .map_err(|error| match error {
            NotDecided::Decide(DecideError::Unknown(id)) => unknown(id),
            NotDecided::Decide(decided @ DecideError::Decided { .. }) => Problem::new(
                StatusCode::CONFLICT,
                "decided",
                "Decided already",
                decided.to_string(),
            ),
            NotDecided::Decide(DecideError::State(error)) => internal(error),
            cannot @ NotDecided::CannotResume { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot-resume",
                "The paused run cannot resume here",
                cannot.to_string(),
            ),
        })?;
    Ok(Json(Decided {
        approval: decided.into(),
        resumed,
    }))
}

/// The verdict in a decision's body; an empty body is a verdict without a reason.
fn verdict(body: &Bytes) -> Result<Verdict, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Verdict::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "The body is not the JSON expected",
            format!("a verdict is {{\"reason\": \"…\", \"principal\": \"…\"}}: {error}"),
        )
    })
}

fn unknown(id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "unknown-approval",
        "No such approval",
        format!("there is no approval {id}"),
    )
}
