//! `GET /v1/budgets` and `GET /v1/metrics`: what the budgets have spent and what the audit log
//! counts, the figures `harness budget show` and `harness metrics` print, for clients with the
//! `operator` role.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::{Extension, Json};
use harness_agent::gates::Principal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::switches::OPERATOR;
use super::{Api, Problem, internal, require};

/// What one budget scope has spent in its current window.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetInfo {
    /// `tokens:global`, `tokens:user:NAME` or `fuel:user:NAME`.
    pub scope: String,
    /// Spent in the window (reservations not settled yet count in full).
    pub spent: u64,
    /// The limit per window.
    pub limit: u64,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// The window the figures cover.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// A duration with a unit (`1h`, `7days`); default one day.
    #[param(
        pattern = r"^[1-9][0-9]{0,8}(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)( [1-9][0-9]{0,8}(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)){0,3}$"
    )]
    pub window: Option<String>,
}

/// The audit log's figures over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsInfo {
    /// The window, in seconds.
    pub window_secs: u64,
    /// Runs per prompt version.
    pub prompts: Vec<PromptFigures>,
    /// Calls per tool function.
    pub tools: Vec<ToolFigures>,
    /// Refusals per gate.
    pub refusals: BTreeMap<String, u64>,
}

/// Runs that ended with one prompt version, and what people said of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptFigures {
    /// The prompt version.
    pub version: String,
    /// Whether runs used it as an agent's canary.
    pub canary: bool,
    /// Runs that ended.
    pub runs: u64,
    /// Of those, runs the model answered.
    pub answered: u64,
    /// Tokens they used.
    pub tokens: u64,
    /// Feedback given on its runs.
    pub feedback: u64,
    /// The mean score of that feedback, from 0 to 1.
    pub mean_score: Option<f64>,
}

/// Calls of one tool function.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolFigures {
    /// `tool.function`.
    pub function: String,
    /// Calls that ran.
    pub calls: u64,
    /// Of those, calls that did not end `ok`.
    pub errors: u64,
    /// Fuel they used.
    pub fuel: u64,
}

/// What each budget has spent in its current window.
#[utoipa::path(
    get,
    path = "/v1/budgets",
    tag = "figures",
    responses(
        (status = 200, description = "Every scope with spending in its window", body = [BudgetInfo]),
        (status = 403, description = "The client lacks the `operator` role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn budgets(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
) -> Result<Json<Vec<BudgetInfo>>, Problem> {
    require(client.as_deref(), OPERATOR)?;
    let gate = server.gate();
    let standings = gate
        .config()
        .budgets()
        .standings(gate.state())
        .map_err(internal)?;
    Ok(Json(
        standings
            .into_iter()
            .map(|s| BudgetInfo {
                scope: s.scope,
                spent: s.spent,
                limit: s.limit,
                window_secs: s.window.as_secs(),
            })
            .collect(),
    ))
}

/// Runs per prompt version, calls per tool function, refusals per gate, over a window.
#[utoipa::path(
    get,
    path = "/v1/metrics",
    tag = "figures",
    params(Window),
    responses(
        (status = 200, description = "The figures", body = MetricsInfo),
        (status = 400, description = "The window is not a duration", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client lacks the `operator` role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn metrics(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
    window: Result<Query<Window>, QueryRejection>,
) -> Result<Json<MetricsInfo>, Problem> {
    let Query(window) = window?;
    require(client.as_deref(), OPERATOR)?;
    let window = match window.window.as_deref() {
        None => std::time::Duration::from_secs(86_400),
        Some(text) => humantime::parse_duration(text)
            .map_err(|e| e.to_string())
            .and_then(|window| {
                (!window.is_zero())
                    .then_some(window)
                    .ok_or_else(|| "an empty window counts nothing".to_owned())
            })
            .map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-window",
                    "Not a duration",
                    format!("`window={text}`: {e}; write a duration such as `1h` or `7days`"),
                )
            })?,
    };
    let metrics = server.gate().state().metrics(window).map_err(internal)?;
    Ok(Json(MetricsInfo {
        window_secs: window.as_secs(),
        prompts: metrics
            .prompts
            .into_iter()
            .map(|p| PromptFigures {
                version: p.version,
                canary: p.canary,
                runs: p.runs,
                answered: p.answered,
                tokens: p.tokens,
                feedback: p.feedback,
                mean_score: p.mean_score,
            })
            .collect(),
        tools: metrics
            .tools
            .into_iter()
            .map(|t| ToolFigures {
                function: t.function,
                calls: t.calls,
                errors: t.errors,
                fuel: t.fuel,
            })
            .collect(),
        refusals: metrics.refusals.into_iter().collect(),
    }))
}

/// `GET /metrics` (role `operator`): the server's Prometheus metrics in the text format.
pub(super) async fn prometheus(
    State(Api { server, .. }): State<Api>,
    client: Option<Extension<Principal>>,
) -> Result<([(header::HeaderName, &'static str); 1], String), Problem> {
    require(client.as_deref(), OPERATOR)?;
    let text = server.metrics().render(server.gate().state());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
