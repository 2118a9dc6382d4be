//! Every record of the audit chain as a typed value: one variant per kind, each with its fields,
//! written and read through the same types. The kind is stored in its own column and the details
//! as JSON; field names are the ones earlier versions wrote, so their records read back too.

use std::collections::BTreeMap;
use std::fmt;

use harness_sandbox::Denial;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guards::pii::Kind;
use crate::models::{Finish, ToolCall};
use crate::routing::Route;
use crate::run::RunStatus;
use crate::state::ledger::Exhausted;

/// The gate that refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Gate {
    /// The tool (or agent) is switched off.
    KillSwitch,
    /// No such tool, or not in the request's route.
    Routing,
    /// The principal lacks the tool's roles.
    Role,
    /// The principal used up the tool's rate.
    Rate,
    /// A fuel budget cannot cover the call.
    Budget,
    /// The arguments are malformed or do not fit the schema.
    Arguments,
    /// A human denied it.
    Approval,
    /// The user it was made for did not confirm it.
    Confirmation,
}

impl Gate {
    /// The gate's name, as records and messages write it: `kill_switch`, `role`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::KillSwitch => "kill_switch",
            Gate::Routing => "routing",
            Gate::Role => "role",
            Gate::Rate => "rate",
            Gate::Budget => "budget",
            Gate::Arguments => "arguments",
            Gate::Approval => "approval",
            Gate::Confirmation => "confirmation",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A human's decision on an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The call may run.
    Approved,
    /// The call may not run; the model is told why.
    Denied,
}

impl Decision {
    /// `approved` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Denied => "denied",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of the chain, by kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record")]
#[non_exhaustive]
pub enum AuditRecord {
    /// A run began.
    #[serde(rename = "run.started")]
    RunStarted(RunStarted),
    /// The run's request was routed.
    #[serde(rename = "run.routed")]
    RunRouted {
        /// The route.
        route: Route,
    },
    /// The run waits for these approvals.
    #[serde(rename = "run.paused")]
    RunPaused {
        /// The approvals.
        approvals: Vec<i64>,
    },
    /// The run goes on after these approvals were decided.
    #[serde(rename = "run.resumed")]
    RunResumed {
        /// The approvals.
        approvals: Vec<i64>,
    },
    /// The run ended.
    #[serde(rename = "run.ended")]
    RunEnded(RunEnded),
    /// Someone said how good a run's answer was.
    #[serde(rename = "run.feedback")]
    RunFeedback(RunFeedback),
    /// The model answered a turn.
    #[serde(rename = "model.responded")]
    ModelResponded(ModelResponded),
    /// No model answered (after retries and fallbacks).
    #[serde(rename = "model.failed")]
    ModelFailed {
        /// Every attempt's error.
        error: String,
    },
    /// A call passed the gates up to the rate (counted for rates).
    #[serde(rename = "tool.admitted")]
    ToolAdmitted(ToolAdmitted),
    /// A gate refused a call.
    #[serde(rename = "tool.refused")]
    ToolRefused(ToolRefused),
    /// A call ran in the sandbox.
    #[serde(rename = "tool.called")]
    ToolCalled(ToolCalled),
    /// A call was cancelled before it ended (its client cancelled it, or the server shut down).
    #[serde(rename = "tool.cancelled")]
    ToolCancelled(ToolCancelled),
    /// The user a call was made for confirmed it.
    #[serde(rename = "tool.confirmed")]
    ToolConfirmed(ToolConfirmed),
    /// A call waits for a human.
    #[serde(rename = "approval.requested")]
    ApprovalRequested(ApprovalRequested),
    /// A human approved a call.
    #[serde(rename = "approval.approved")]
    ApprovalApproved(ApprovalDecided),
    /// A human denied a call.
    #[serde(rename = "approval.denied")]
    ApprovalDenied(ApprovalDecided),
    /// Personal data was masked before text reached the model.
    #[serde(rename = "pii.masked")]
    PiiMasked {
        /// `input`, or the id of the call whose result it was.
        place: String,
        /// Matches per kind.
        found: BTreeMap<Kind, u32>,
    },
    /// Personal data of a blocked kind kept text from the model.
    #[serde(rename = "pii.blocked")]
    PiiBlocked {
        /// `input`, or the id of the call whose result it was.
        place: String,
        /// The kind that blocked it.
        kind: Kind,
        /// Matches per kind.
        found: BTreeMap<Kind, u32>,
    },
    /// A token budget could not cover the next model call.
    #[serde(rename = "budget.exhausted")]
    BudgetExhausted {
        /// Which budget, and what was left.
        budget: Exhausted,
    },
    /// The final answer missed the output schema.
    #[serde(rename = "answer.invalid")]
    AnswerInvalid {
        /// Why.
        problem: String,
    },
    /// A threshold of `[alerts]` was crossed.
    #[serde(rename = "alert.raised")]
    AlertRaised(AlertRaised),
    /// A tool or agent was switched off.
    #[serde(rename = "switch.killed")]
    SwitchKilled {
        /// `tool NAME` or `agent NAME`.
        target: String,
        /// Why.
        reason: String,
        /// Who.
        by: String,
    },
    /// A tool or agent was switched back on.
    #[serde(rename = "switch.enabled")]
    SwitchEnabled {
        /// `tool NAME` or `agent NAME`.
        target: String,
        /// Who.
        by: String,
    },
}

/// `run.started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    /// The agent.
    pub agent: String,
    /// Who it runs for.
    pub principal: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// The model (`provider/model`).
    pub model: String,
    /// The prompt it runs with.
    pub prompt: PromptUsed,
    /// The input as the model sees it (masked); `None` when nothing reached the model.
    pub input: Option<String>,
    /// The input's length in characters.
    pub input_chars: usize,
    /// SHA-256 of the input as given, to match it without keeping it.
    pub input_sha256: String,
}

/// The prompt version a run used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptUsed {
    /// The first 12 hex digits of its SHA-256.
    pub version: String,
    /// Its file, or `inline`.
    pub source: String,
    /// Whether it was the canary.
    pub canary: bool,
}

/// `run.ended`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunEnded {
    /// How it ended.
    pub status: RunStatus,
    /// The answer for the user (masked).
    pub answer: String,
    /// Model turns taken.
    pub turns: u32,
    /// The prompt version.
    pub prompt_version: String,
    /// Input tokens over the run.
    #[serde(rename = "gen_ai.usage.input_tokens")]
    pub input_tokens: u64,
    /// Output tokens over the run.
    #[serde(rename = "gen_ai.usage.output_tokens")]
    pub output_tokens: u64,
}

/// `run.feedback`: one author's judgement of a run, with the prompt it ran with, so prompt
/// versions and canaries are compared on what people said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFeedback {
    /// Who judged it (the end user, or a reviewer).
    pub author: String,
    /// From 0 (useless) to 1 (exactly right).
    pub score: f64,
    /// In their words (masked like what reaches the model).
    pub comment: Option<String>,
    /// The run's agent.
    pub agent: String,
    /// The prompt the run used.
    pub prompt: PromptUsed,
}

/// `model.responded`: what the model said (masked) and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResponded {
    /// The model that answered, as the provider named it.
    pub model: String,
    /// The provider's id for the response.
    pub response_id: Option<String>,
    /// Why it stopped.
    pub finish: Finish,
    /// Its text.
    pub text: Option<String>,
    /// Its tool calls.
    pub calls: Vec<ToolCall>,
    /// The provider.
    #[serde(rename = "gen_ai.provider.name")]
    pub provider: String,
    /// The model asked for.
    #[serde(rename = "gen_ai.request.model")]
    pub request_model: String,
    /// Input tokens.
    #[serde(rename = "gen_ai.usage.input_tokens")]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(rename = "gen_ai.usage.output_tokens")]
    pub output_tokens: u64,
    /// How long the call took.
    pub latency_ms: f64,
}

/// `tool.admitted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolAdmitted {
    /// The model's id for the call.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// `tool.function`.
    pub function: String,
    /// Who the run acts for.
    pub principal: String,
}

/// `tool.refused`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRefused {
    /// The model's id for the call.
    pub call_id: String,
    /// The name the model used.
    pub name: String,
    /// The gate.
    pub gate: Gate,
    /// Why, as the model was told.
    pub reason: String,
}

/// `tool.called`: how a call that ran ended. Its result is kept as the model was told it, with
/// personal data masked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCalled {
    /// The model's id for the call.
    pub call_id: String,
    /// `tool.function`.
    pub function: String,
    /// The outcome (`{"kind": "ok", "value": …}`, a tool error, or a stop), masked.
    pub outcome: Value,
    /// Fuel used.
    pub fuel: u64,
    /// Wall time, in microseconds.
    pub wall_us: u64,
    /// Capability uses the sandbox denied.
    pub denials: Vec<Denial>,
}

impl ToolCalled {
    /// The tool the function belongs to.
    pub fn tool(&self) -> &str {
        self.function.split('.').next().unwrap_or_default()
    }

    /// Whether the call failed (a tool error or a stop).
    pub fn failed(&self) -> bool {
        self.outcome.get("kind").and_then(Value::as_str) != Some("ok")
    }
}

/// `tool.cancelled`: a call stopped wherever it was (the gates, a question to its user, the
/// sandbox); fuel reserved for it stays counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCancelled {
    /// The call's id.
    pub call_id: String,
    /// The name the client used.
    pub name: String,
}

/// `tool.confirmed`: the user a call was made for said yes to it, through their client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolConfirmed {
    /// The call's id.
    pub call_id: String,
    /// `tool.function`.
    pub function: String,
    /// Who confirmed: the principal the call is made for.
    pub principal: String,
    /// How they were asked (for example `MCP elicitation`).
    pub how: String,
}

/// `approval.requested`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    /// The approval's number.
    pub approval: i64,
    /// The model's id for the call.
    pub call_id: String,
    /// `tool.function`.
    pub function: String,
}

/// `approval.approved` / `approval.denied`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecided {
    /// The approval's number.
    pub approval: i64,
    /// Who decided.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// `alert.raised`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    /// `run_tokens` or `tool_error_rate`.
    pub alert: String,
    /// The run or the tool function.
    pub subject: String,
    /// The value that crossed the threshold.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
}

impl AuditRecord {
    /// The principal a record is about, kept in its own column for queries.
    pub fn principal(&self) -> Option<&str> {
        match self {
            AuditRecord::RunStarted(r) => Some(&r.principal),
            AuditRecord::ToolAdmitted(r) => Some(&r.principal),
            AuditRecord::ToolConfirmed(r) => Some(&r.principal),
            AuditRecord::RunFeedback(r) => Some(&r.author),
            _ => None,
        }
    }

    /// The tool a record is about, kept in its own column for queries.
    pub fn tool(&self) -> Option<&str> {
        match self {
            AuditRecord::ToolAdmitted(r) => Some(&r.tool),
            AuditRecord::ToolCalled(r) => Some(r.tool()),
            AuditRecord::ToolConfirmed(r) => r.function.split('.').next(),
            _ => None,
        }
    }

    /// Whether the record only tells what came of something already admitted or begun (a run's
    /// route, a call's outcome or refusal, a model's answer, a run's end): nothing waits on it,
    /// so under [`Durability::Admissions`](super::Durability::Admissions) it need not wait for
    /// the disk.
    pub fn is_outcome(&self) -> bool {
        matches!(
            self,
            AuditRecord::RunRouted { .. }
                | AuditRecord::ToolCalled(_)
                | AuditRecord::ToolRefused(_)
                | AuditRecord::ToolCancelled(_)
                | AuditRecord::ModelResponded(_)
                | AuditRecord::ModelFailed { .. }
                | AuditRecord::RunEnded(_)
        )
    }

    /// Splits the record into its kind and its details as JSON.
    pub(crate) fn to_parts(&self) -> Result<(String, Value), String> {
        let tagged = serde_json::to_value(self).map_err(|e| e.to_string())?;
        match (tagged.get("kind"), tagged.get("record")) {
            (Some(Value::String(kind)), Some(record)) => Ok((kind.clone(), record.clone())),
            _ => Err(format!(
                "a record did not serialize with its kind: {tagged}"
            )),
        }
    }

    /// The record of `kind` with details `record`, or why they do not make one.
    pub(crate) fn from_parts(kind: &str, record: Value) -> Result<AuditRecord, String> {
        serde_json::from_value(serde_json::json!({"kind": kind, "record": record}))
            .map_err(|e| format!("a `{kind}` record: {e}"))
    }
}
