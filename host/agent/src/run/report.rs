//! What a run reports: how it ended, and each step in order (the audit log has the same steps).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calls::CallDecision;
use crate::guards::pii::Kind;
use crate::models::{TokenUsage, ToolCall, ToolResult};

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// The model gave its final answer.
    Answered,
    /// The model was still calling tools when the turn limit came.
    TurnLimit,
    /// The model kept sending malformed or invalid tool arguments.
    ArgumentErrors,
    /// No model answered (after retries and fallbacks).
    ModelFailed,
    /// The agent is switched off.
    AgentKilled,
    /// A token budget cannot cover the next model call.
    BudgetExhausted,
    /// The input was too long, or held personal data the agent blocks; nothing reached the model.
    InputRejected,
    /// Waiting for human approval of tool calls; `harness approvals` resumes it.
    Paused,
    /// The final answer kept missing the agent's output schema.
    OutputInvalid,
    /// Cancelled through its [`CancellationToken`](tokio_util::sync::CancellationToken).
    Cancelled,
    /// The server driving it stopped mid-run (its lease ran out); another ended it, its
    /// records up to there intact. It did not go on.
    Abandoned,
}

/// One step of a run, in order, for display and tests (the audit log has the same steps).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Personal data or secrets were masked before text reached the model.
    Masked {
        /// `input`, or the id of the tool call whose result was masked.
        place: String,
        /// How many of each kind.
        found: BTreeMap<Kind, u32>,
    },
    /// The model's turn.
    Model {
        /// Its text.
        text: Option<String>,
        /// How many tool calls it made.
        calls: usize,
        /// Tokens used.
        usage: TokenUsage,
    },
    /// A tool call and its decision.
    Call {
        /// The call as proposed.
        call: ToolCall,
        /// What the harness did with it.
        decision: CallDecision,
        /// What the model was told.
        result: ToolResult,
    },
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    /// The run's id (in the audit log and in `caller.run-id` for its tools).
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// The answer for the user: the model's, or a plain account of why there is none.
    pub answer: String,
    /// Model turns taken.
    pub turns: u32,
    /// Tokens used across turns.
    pub usage: TokenUsage,
    /// The version of the system prompt it ran with.
    pub prompt_version: String,
    /// Every step.
    pub events: Vec<Event>,
}
