//! `/v1/runs`: agent runs started for a client (or an end user it acts for), answered when
//! they end, streamed step by step as Server-Sent Events, or left to go on in the background;
//! read back from the audit log; and judged by the people they answered.

use std::convert::Infallible;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use harness_agent::gates::Principal;
use harness_agent::guards::pii::PiiPolicy;
use harness_agent::run::{Agent, RunReport};
use harness_agent::state::StateError;
use harness_agent::state::audit::AuditEntry;
use harness_agent::state::runs::{FeedbackError, RunFilter, RunState, RunSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use super::switches::OPERATOR;
use super::{APPROVER, Api, Problem, acting, internal};
use crate::mcp::McpServer;
use crate::runs::{RunError, Started};
use crate::settings::ActFor;

/// Runs per page of `GET /v1/runs`, unless `limit` says otherwise.
pub const PAGE: usize = 50;

/// The most runs one page may hold.
pub const MAX_PAGE: usize = 500;

/// What `POST /v1/runs` asks for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The agent, as the whitelist names it.
    pub agent: String,
    /// The user's words.
    pub input: String,
    /// The end user the run is for (a client with `act_for = true` only); by default the
    /// client's own principal. Budgets, rates and roles then apply to them.
    #[schema(pattern = r"\S")]
    pub principal: Option<String>,
    /// The roles the run has (the end user's, or fewer of the client's own), each one the
    /// client holds itself; by default the client's.
    pub roles: Option<Vec<String>>,
    /// Wait for the run to end or pause (the default); `false` answers `202` with the run's
    /// id at once while it goes on.
    #[serde(default = "wait_by_default")]
    pub wait: bool,
}

fn wait_by_default() -> bool {
    true
}

/// A run that ended, or paused for approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunResult {
    /// Its id.
    pub run_id: String,
    /// Its agent.
    pub agent: String,
    /// Whom it ran for.
    pub principal: String,
    /// `answered`, `paused` (waiting for approval), `turn_limit`, `argument_errors`,
    /// `model_failed`, `agent_killed`, `budget_exhausted`, `input_rejected`, `output_invalid`,
    /// `cancelled` or `abandoned` (its server stopped mid-run; another ended it).
    pub status: String,
    /// The answer for the user: the model's, or a plain account of why there is none.
    pub answer: String,
    /// Model turns taken.
    pub turns: u32,
    /// Input tokens over the run.
    pub input_tokens: u64,
    /// Output tokens over the run.
    pub output_tokens: u64,
    /// The system prompt's version.
    pub prompt_version: String,
    /// Each step in order: `{"event": "model", …}`, `{"event": "call", …}` (the call, the
    /// harness's decision and what the model was told), `{"event": "masked", …}`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
}

impl RunResult {
    fn new(agent: &str, principal: &str, report: RunReport) -> RunResult {
        RunResult {
            status: RunState::Stopped(report.status).name(),
            run_id: report.run_id,
            agent: agent.to_owned(),
            principal: principal.to_owned(),
            answer: report.answer,
            turns: report.turns,
            input_tokens: report.usage.input_tokens,
            output_tokens: report.usage.output_tokens,
            prompt_version: report.prompt_version,
            events: report
                .events
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect(),
        }
    }
}

/// A run accepted to go on in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunAccepted {
    /// Its id.
    pub run_id: String,
    /// Where to read it: `/v1/runs/{run_id}`.
    pub location: String,
}

/// A run as the audit log tells it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunInfo {
    /// Its id.
    pub run_id: String,
    /// Its agent.
    pub agent: String,
    /// Whom it runs for.
    pub principal: String,
    /// When it began (RFC 3339).
    pub started_at: String,
    /// `running` (or its process stopped before it ended), `paused`, or how it ended
    /// (`answered`, `model_failed`, …).
    pub status: String,
    /// The system prompt's version.
    pub prompt_version: String,
    /// Whether that prompt is the agent's canary.
    pub canary: bool,
    /// The answer (masked like the audit log keeps it), once ended.
    pub answer: Option<String>,
}

impl From<RunSummary> for RunInfo {
    fn from(run: RunSummary) -> RunInfo {
        RunInfo {
            status: run.status.name(),
            run_id: run.run_id,
            agent: run.agent,
            principal: run.principal,
            started_at: run.started_at,
            prompt_version: run.prompt_version,
            canary: run.canary,
            answer: run.answer,
        }
    }
}

/// A run with its records.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunInfo,
    /// Its audit records in order: what the model said, each gate decision and tool outcome,
    /// approvals, masking, its end.
    pub records: Vec<RecordInfo>,
}

/// One audit record of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordInfo {
    /// Its position in the audit chain.
    pub seq: u64,
    /// When it was written (RFC 3339).
    pub at: String,
    /// What happened: `run.started`, `model.responded`, `tool.called`, `tool.refused`, …
    pub kind: String,
    /// The details, as the chain keeps them (masked).
    #[schema(value_type = Object)]
    pub record: Value,
}

impl From<AuditEntry> for RecordInfo {
    fn from(entry: AuditEntry) -> RecordInfo {
        let record = serde_json::to_value(&entry.record)
            .ok()
            .and_then(|mut tagged| tagged.get_mut("record").map(Value::take))
            .unwrap_or(Value::Null);
        RecordInfo {
            seq: entry.seq,
            at: entry.at,
            kind: entry.kind,
            record,
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunInfo>,
    /// The next page's address, when there may be more.
    pub next: Option<String>,
}

/// Which runs `GET /v1/runs` lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only this principal's runs.
    pub principal: Option<String>,
    /// Only runs standing so: `running`, `paused`, `answered`, …
    #[param(
        pattern = "^(running|paused|answered|turn_limit|argument_errors|model_failed|agent_killed|budget_exhausted|input_rejected|output_invalid|cancelled|abandoned)$"
    )]
    pub status: Option<String>,
    /// Only runs begun at or after this time (RFC 3339, e.g. `2026-12-03T09:00:00Z`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only runs begun within this span back from now (`1h`, `7days`).
    #[param(
        pattern = r"^[1-9][0-9]{0,8}(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)( [1-9][0-9]{0,8}(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)){0,3}$"
    )]
    pub within: Option<String>,
    /// The cursor of the page to read (from the previous page's `next`).
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// Runs per page (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// What someone thought of a run's answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// From 0 (useless) to 1 (exactly right); a thumbs-up is 1, a thumbs-down 0.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score: f64,
    /// In their words.
    pub comment: Option<String>,
    /// The end user giving it (a client with `act_for = true` only); by default the client.
    #[schema(pattern = r"\S")]
    pub principal: Option<String>,
}

/// Feedback recorded in the audit chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackInfo {
    /// The run.
    pub run_id: String,
    /// Who gave it.
    pub author: String,
    /// The score.
    pub score: f64,
    /// The comment, masked like what reaches the model.
    pub comment: Option<String>,
    /// The prompt version the run used.
    pub prompt_version: String,
}

/// Runs an agent for the client, or for an end user it acts for. By default the answer is
/// the run's report once it ends or pauses; with `Accept: text/event-stream` each step is
/// streamed as it happens (`run`, then `step`s, then `end` with the report); with
/// `"wait": false`, `202` with the run's id at once.
#[utoipa::path(
    post,
    path = "/v1/runs",
    tag = "runs",
    request_body = RunRequest,
    responses(
        (status = 200, description = "The run ended or paused: its report", body = RunResult),
        (status = 202, description = "The run goes on in the background", body = RunAccepted),
        (status = 400, description = "The body is not a run request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid client key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client may not act for that principal, or give that role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is JSON of the wrong shape", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The agent's model cannot be set up", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn start(
    State(Api { server, cancel }): State<Api>,
    client: Option<Extension<Principal>>,
    act_for: Option<Extension<ActFor>>,
    headers: HeaderMap,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(request) = body?;
    let principal = acting(
        &server,
        client.as_deref(),
        act_for.map(|e| e.0),
        request.principal,
        request.roles,
    )?;
    let agent = server
        .agent(&request.agent, 0, &cancel)
        .map_err(not_started)?;
    if wants_stream(&headers) {
        return Ok(stream(&server, agent, principal, &request.input)?.into_response());
    }
    let Started { run_id, report } = server
        .start_run(agent, &principal, &request.input)
        .map_err(internal)?;
    if !request.wait {
        let location = format!("/v1/runs/{run_id}");
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location.clone())],
            Json(RunAccepted { run_id, location }),
        )
            .into_response());
    }
    let report = ended(report.await)?;
    Ok(Json(RunResult::new(&request.agent, &principal.name, report)).into_response())
}

/// Whether the client asked for Server-Sent Events.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// The run as Server-Sent Events: `run` (its id), a `step` per event as it happens, then
/// `end` (the report) or `error` (a problem document). The run goes on if the client leaves.
fn stream(
    server: &McpServer,
    agent: Agent,
    principal: Principal,
    input: &str,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>> + use<>>, Problem> {
    let (steps_tx, mut steps) = mpsc::unbounded_channel();
    let agent_name = agent.settings().name.clone();
    let Started { run_id, report } = server
        .start_run(agent.with_steps(steps_tx), &principal, input)
        .map_err(internal)?;
    let (events_tx, events) = mpsc::unbounded_channel();
    let send = move |name: &str, data: Result<String, serde_json::Error>| {
        let event = SseEvent::default()
            .event(name)
            .data(data.unwrap_or_default());
        // The client left; the run goes on.
        let _ = events_tx.send(event);
    };
    send(
        "run",
        serde_json::to_string(
            &serde_json::json!({"run_id": run_id, "agent": agent_name, "principal": principal.name}),
        ),
    );
    tokio::spawn(async move {
        while let Some(step) = steps.recv().await {
            send("step", serde_json::to_string(&step));
        }
        match ended(report.await) {
            Ok(report) => send(
                "end",
                serde_json::to_string(&RunResult::new(&agent_name, &principal.name, report)),
            ),
            Err(problem) => send("error", serde_json::to_string(&problem)),
        }
    });
    let events = futures::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|event| (Ok(event), events))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// A run's report, or the problem that ended it.
fn ended(
    joined: Result<Result<RunReport, StateError>, tokio::task::JoinError>,
) -> Result<RunReport, Problem> {
    match joined {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(error)) => Err(internal(error)),
        Err(error) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "run-failed",
            "The run failed",
            format!("the run's task ended without a report: {error}"),
        )),
    }
}

/// Why a run could not start, as a problem.
fn not_started(error: RunError) -> Problem {
    match error {
        RunError::UnknownAgent(unknown) => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-agent",
            "No such agent",
            unknown.to_string(),
        ),
        RunError::Model(error) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model-unavailable",
            "The agent's model cannot be set up",
            error.to_string(),
        ),
        RunError::State(error) => internal(error),
    }
}

/// The runs the client may read, newest first, a page at a time. A client reads its own
/// principal's runs; one with `act_for`, `approver` or `operator` reads everyone's.
#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "runs",
    params(RunQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "A filter is not understood", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid client key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client may not read that principal's runs", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    act_for: Option<Extension<ActFor>>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Json<RunPage>, Problem> {
    let Query(query) = query?;
    let reader = Reader::new(client.as_deref(), act_for.is_some());
    let principal = match (reader, query.principal) {
        (Reader::Own(own), None) => Some(own.to_owned()),
        (reader, Some(asked)) => {
            reader.may_read(&asked)?;
            Some(asked)
        }
        (Reader::Everyone, None) => None,
    };
    let status = query
        .status
        .as_deref()
        .map(|name| {
            RunState::parse(name).ok_or_else(|| {
                bad_query(
                    "status",
                    format!(
                        "`{name}` is not a run status; use running, paused, answered, \
                         turn_limit, argument_errors, model_failed, agent_killed, \
                         budget_exhausted, input_rejected, output_invalid, cancelled or abandoned"
                    ),
                )
            })
        })
        .transpose()?;
    let since = [
        query.since.as_deref().map(at).transpose()?,
        query.within.as_deref().map(within).transpose()?,
    ]
    .into_iter()
    .flatten()
    .max();
    let limit = query.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad_query(
            "limit",
            format!("{limit} is out of range; use 1 to {MAX_PAGE}"),
        ));
    }
    let filter = RunFilter {
        principal: principal.clone(),
        status,
        since: since.clone(),
        before: query
            .before
            .map(|before| {
                u64::try_from(before)
                    .map_err(|_| bad_query("before", format!("{before} is negative")))
            })
            .transpose()?,
        limit,
    };
    let runs = server.gate().state().runs(&filter).map_err(internal)?;
    let next = (runs.len() == limit)
        .then(|| runs.last().map(|last| last.seq))
        .flatten()
        .map(|before| {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            next.append_pair("before", &before.to_string());
            next.append_pair("limit", &limit.to_string());
            if let Some(principal) = &principal {
                next.append_pair("principal", principal);
            }
            if let Some(status) = filter.status {
                next.append_pair("status", &status.name());
            }
            if let Some(since) = &since {
                next.append_pair("since", since);
            }
            format!("/v1/runs?{}", next.finish())
        });
    Ok(Json(RunPage {
        runs: runs.into_iter().map(Into::into).collect(),
        next,
    }))
}

/// One run, with its audit records.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run and its records", body = RunDetail),
        (status = 401, description = "No valid client key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The run is another principal's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn show(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    act_for: Option<Extension<ActFor>>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, Problem> {
    let gate = server.gate();
    let run = readable(&server, client.as_deref(), act_for.is_some(), &id)?;
    let records = gate.state().audit_of_run(&id).map_err(internal)?;
    Ok(Json(RunDetail {
        run: run.into(),
        records: records.into_iter().map(Into::into).collect(),
    }))
}

/// Records what the end user (or a reviewer) thought of a run's answer, once per author; it
/// is counted per prompt version in `/v1/metrics`, `harness metrics` and Prometheus.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/feedback",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    request_body = FeedbackRequest,
    responses(
        (status = 201, description = "Recorded", body = FeedbackInfo),
        (status = 400, description = "The body is not feedback", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid client key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The run is another principal's, or the client may not act for the author", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The author gave feedback on this run already", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The score is not from 0 to 1, or the body is JSON of the wrong shape", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn feedback(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    act_for: Option<Extension<ActFor>>,
    Path(id): Path<String>,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<FeedbackInfo>), Problem> {
    let Json(request) = body?;
    let run = readable(&server, client.as_deref(), act_for.is_some(), &id)?;
    let author = acting(
        &server,
        client.as_deref(),
        act_for.map(|e| e.0),
        request.principal,
        None,
    )?;
    let gate = server.gate();
    let comment = request.comment.map(|comment| {
        gate.config()
            .agents()
            .get(&run.agent)
            .map_or_else(PiiPolicy::default, |agent| agent.pii.clone())
            .mask(&comment)
    });
    match gate
        .state()
        .add_feedback(&id, &author.name, request.score, comment)
    {
        Ok(recorded) => {
            server.metrics().judged(&recorded);
            Ok((
                StatusCode::CREATED,
                Json(FeedbackInfo {
                    run_id: id,
                    author: recorded.author,
                    score: recorded.score,
                    comment: recorded.comment,
                    prompt_version: recorded.prompt.version,
                }),
            ))
        }
        Err(error @ FeedbackError::UnknownRun(_)) => Err(unknown_run(error.to_string())),
        Err(error @ FeedbackError::Given { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "feedback-given",
            "Feedback given already",
            error.to_string(),
        )),
        Err(error @ FeedbackError::Score(_)) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-score",
            "The score is out of range",
            error.to_string(),
        )),
        Err(FeedbackError::State(error)) => Err(internal(error)),
    }
}

/// Whose runs a client may read.
#[derive(Clone, Copy)]
enum Reader<'a> {
    /// Every principal's: the local user, and clients that act for users, approve or operate.
    Everyone,
    /// Only this principal's.
    Own(&'a str),
}

impl<'a> Reader<'a> {
    fn new(client: Option<&'a Principal>, act_for: bool) -> Reader<'a> {
        match client {
            Some(client)
                if !act_for
                    && !client.roles.contains(APPROVER)
                    && !client.roles.contains(OPERATOR) =>
            {
                Reader::Own(&client.name)
            }
            _ => Reader::Everyone,
        }
    }

    fn may_read(self, principal: &str) -> Result<(), Problem> {
        match self {
            Reader::Own(own) if own != principal => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "not-yours",
                "Another principal's runs",
                format!(
                    "{own} may read only its own runs, not {principal}'s: it needs `act_for = \
                     true` or the role `{APPROVER}` or `{OPERATOR}` in its [clients] entry"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Run `id`, if the client may read it.
fn readable(
    server: &McpServer,
    client: Option<&Principal>,
    act_for: bool,
    id: &str,
) -> Result<RunSummary, Problem> {
    let run = server
        .gate()
        .state()
        .run_summary(id)
        .map_err(internal)?
        .ok_or_else(|| unknown_run(format!("there is no run {id}")))?;
    Reader::new(client, act_for).may_read(&run.principal)?;
    Ok(run)
}

fn unknown_run(detail: String) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "unknown-run", "No such run", detail)
}

fn bad_query(parameter: &str, detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-query",
        "A query parameter is not understood",
        format!("{parameter}: {detail}"),
    )
}

/// `since=` as the audit log writes times (UTC, microseconds; 1970 at the earliest).
fn at(value: &str) -> Result<String, Problem> {
    let time = chrono::DateTime::parse_from_rfc3339(value).map_err(|e| {
        bad_query(
            "since",
            format!("`{value}` is not an RFC 3339 time such as 2026-12-03T09:00:00Z: {e}"),
        )
    })?;
    let utc = time
        .with_timezone(&chrono::Utc)
        .max(chrono::DateTime::UNIX_EPOCH);
    Ok(utc.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// `within=` as the time it reaches back to, as the audit log writes times.
fn within(value: &str) -> Result<String, Problem> {
    match humantime::parse_duration(value) {
        Ok(span) if !span.is_zero() => Ok(harness_agent::state::audit::since(span)),
        Ok(_) => Err(bad_query("within", "an empty span selects nothing".into())),
        Err(e) => Err(bad_query(
            "within",
            format!("`{value}` is not a span such as 1h or 7days: {e}"),
        )),
    }
}
