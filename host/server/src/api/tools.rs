//! `GET /v1/tools` and `POST /v1/tools/{tool}/{function}`: the whitelist's tool functions, and
//! one call through the same gates as an MCP `tools/call`.

use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use harness_agent::calls::{CallDecision, Confirmation};
use harness_agent::gates::{Admitted, Principal};
use harness_agent::state::records::Gate;
use harness_sandbox::Outcome;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::Api;
use super::problem::Problem;
use crate::mcp::{Undecided, screen, tools_of};

/// A tool function, as `GET /v1/tools` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolInfo {
    /// How models and MCP clients name it (`tool__function`).
    pub name: String,
    /// Where to call it: `/v1/tools/{tool}/{function}`.
    pub path: String,
    /// The tool's title, from its WIT world.
    pub title: Option<String>,
    /// What the function does, from its WIT doc comment.
    pub description: Option<String>,
    /// The JSON Schema of its arguments.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// The JSON Schema of its result.
    #[schema(value_type = Object)]
    pub output_schema: Option<Value>,
    /// What its grants allow, as MCP annotates it.
    pub annotations: Annotations,
}

/// What a tool's grants allow (see the README's rule for MCP annotations).
#[derive(Debug, Serialize, ToSchema)]
pub struct Annotations {
    /// It changes nothing: no read-write directory, key-value store, HTTP method other than
    /// GET/HEAD, or socket.
    pub read_only: bool,
    /// It may change something.
    pub destructive: bool,
    /// It reaches beyond the host: HTTP or socket grants.
    pub open_world: bool,
}

/// What came of a call that was not refused.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CallResult {
    /// It ran in the sandbox (`200`).
    Ran {
        /// `tool.function`.
        function: String,
        /// How it ended: `{"kind": "ok", "value": …}`, `{"kind": "tool_error", "error": …}`, a
        /// stop (`out_of_fuel`, `timed_out`, …), or `withheld` when `[mcp] pii` blocks the
        /// personal data in it.
        #[schema(value_type = Object)]
        outcome: Value,
        /// Fuel it used.
        fuel: u64,
        /// Wall time, in microseconds.
        wall_us: u64,
        /// Highest linear memory, in bytes.
        peak_memory: u64,
        /// Capability uses its grants did not allow.
        #[schema(value_type = Vec<Object>)]
        denials: Vec<Value>,
    },
    /// It waits for a person (`202`): the same call made again once they decided
    /// (`harness approvals approve|deny ID`) runs, or is refused, once.
    AwaitingApproval {
        /// The approval to decide.
        approval: i64,
    },
}

/// Every tool function of the whitelist that is not switched off.
#[utoipa::path(
    get,
    path = "/v1/tools",
    tag = "tools",
    responses(
        (status = 200, description = "The tool functions, in whitelist order", body = [ToolInfo]),
        (status = 401, description = "No valid client key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(
    State(Api { server, .. }): State<Api>,
) -> Result<Json<Vec<ToolInfo>>, Problem> {
    // One whitelist for the list and the paths, even if a reload swaps it meanwhile.
    let gate = server.gate();
    let tools = tools_of(&gate).map_err(super::internal)?;
    let listed = tools
        .into_iter()
        .filter_map(|tool| {
            let (loaded, function) = gate.host().function(&tool.name).ok()?;
            let annotations = tool.annotations.as_ref();
            let read_only = annotations.and_then(|a| a.read_only_hint).unwrap_or(false);
            Some(ToolInfo {
                path: format!("/v1/tools/{}/{}", loaded.policy.name, function.name),
                name: tool.name.to_string(),
                title: tool.title.clone(),
                description: tool.description.as_deref().map(str::to_owned),
                input_schema: Value::Object((*tool.input_schema).clone()),
                output_schema: tool
                    .output_schema
                    .as_ref()
                    .map(|s| Value::Object((**s).clone())),
                annotations: Annotations {
                    read_only,
                    destructive: !read_only,
                    open_world: annotations.and_then(|a| a.open_world_hint).unwrap_or(false),
                },
            })
        })
        .collect();
    Ok(Json(listed))
}

/// Calls `tool.function` with the JSON object in the body as its arguments, for the client's
/// principal, through the gates (kill switch, role, rate, budget, arguments, approval), then
/// the sandbox; recorded in the audit chain like any call.
#[utoipa::path(
    post,
    path = "/v1/tools/{tool}/{function}",
    tag = "tools",
    params(
        ("tool" = String, Path, description = "The tool's name in the whitelist"),
        ("function" = String, Path, description = "The function's name"),
    ),
    request_body(content = Object, description = "The arguments, a JSON object"),
    responses(
        (status = 200, description = "It ran: the outcome and what it used", body = CallResult),
        (status = 202, description = "It waits for a person's approval", body = CallResult),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid client key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Refused by the role, approval or confirmation gate", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tool function", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The arguments do not fit the function's schema", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Refused by the rate or budget gate", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The tool is switched off", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn call(
    State(Api { server, cancel }): State<Api>,
    client: Option<Extension<Principal>>,
    Path((tool, function)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<CallResult>), Problem> {
    let Json(arguments) = body?;
    let principal = client.map_or_else(|| server.local_principal().clone(), |c| c.0);
    let ask = async |_: &Admitted| Confirmation::Refused {
        reason: "the HTTP API cannot ask them; call it from an MCP client that supports \
                 elicitation"
            .into(),
    };
    let name = format!("{tool}.{function}");
    let decided = server
        .track(server.decide("api", &principal, &name, &arguments, ask, cancel))
        .await;
    let (decision, current) = match decided {
        Ok(decided) => decided,
        Err(Undecided::State(error)) => return Err(super::internal(error)),
        Err(Undecided::Cancelled) => {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cancelled",
                "The call was cancelled",
                "the server is shutting down",
            ));
        }
    };
    match decision {
        CallDecision::Refused { gate, reason } => Err(refused(gate, reason)),
        CallDecision::AwaitingApproval { approval } => Ok((
            StatusCode::ACCEPTED,
            Json(CallResult::AwaitingApproval { approval }),
        )),
        CallDecision::Ran { function, report } => {
            let withheld = |kind: &str| json!({"kind": "withheld", "reason": format!("the result contains {kind} data")});
            let outcome = match report.outcome {
                Outcome::Ok { value } => match screen(&current.settings, value) {
                    Ok(value) => json!({"kind": "ok", "value": value}),
                    Err(kind) => withheld(kind),
                },
                Outcome::ToolError { error } => match screen(&current.settings, error) {
                    Ok(error) => json!({"kind": "tool_error", "error": error}),
                    Err(kind) => withheld(kind),
                },
                stopped => serde_json::to_value(&stopped).unwrap_or(Value::Null),
            };
            Ok((
                StatusCode::OK,
                Json(CallResult::Ran {
                    function,
                    outcome,
                    fuel: report.usage.fuel,
                    wall_us: u64::try_from(report.usage.wall.as_micros()).unwrap_or(u64::MAX),
                    peak_memory: report.usage.peak_memory,
                    denials: report
                        .denials
                        .iter()
                        .filter_map(|d| serde_json::to_value(d).ok())
                        .collect(),
                }),
            ))
        }
    }
}

/// The problem document of a refusal by `gate`.
fn refused(gate: Gate, reason: String) -> Problem {
    let (status, name, title) = match gate {
        Gate::Routing => (
            StatusCode::NOT_FOUND,
            "unknown-tool",
            "No such tool function",
        ),
        Gate::Arguments => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-arguments",
            "The arguments do not fit the function",
        ),
        Gate::KillSwitch => (
            StatusCode::SERVICE_UNAVAILABLE,
            "switched-off",
            "The tool is switched off",
        ),
        Gate::Rate | Gate::Budget => (
            StatusCode::TOO_MANY_REQUESTS,
            "limited",
            "Over a rate or budget",
        ),
        _ => (StatusCode::FORBIDDEN, "refused", "Refused by a gate"),
    };
    Problem {
        gate: Some(gate.as_str().to_owned()),
        ..Problem::new(status, name, title, reason)
    }
}
