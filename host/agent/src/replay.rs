//! Replay: re-run a recorded run with the model responses the audit log holds, re-executing
//! its tools in the sandbox, and report the first divergence — a different decision (a gate
//! refuses now, or no longer), a different tool, or a different result — or that it matched.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::gates::Principal;
use crate::models::Finish;
use crate::models::scripted::{ScriptedCall, ScriptedModel, ScriptedUsage, Step};
use crate::run::{Agent, CallDecision, Event, RunReport};
use crate::state::audit::AuditEntry;
use crate::state::{StateError, StateStore};

/// Why a run cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The audit log has no such run.
    #[error("the audit log has no run `{0}`")]
    UnknownRun(String),
    /// The run's records are not what a run writes.
    #[error("run `{run}`: {message}")]
    Unreadable {
        /// The run.
        run: String,
        /// What is missing or wrong.
        message: String,
    },
}

/// A run as the audit log recorded it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The agent that ran it.
    pub agent: String,
    /// Who it ran for.
    pub principal: Principal,
    /// The input as the model saw it.
    pub input: String,
    /// The model's responses, in order.
    pub responses: Vec<Step>,
    /// Each tool call's decision, in order: `ran FUNCTION → OUTCOME` or `refused by GATE`.
    pub decisions: Vec<String>,
}

/// What replaying found.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// The recorded run.
    pub original: String,
    /// The new run (in the audit log of the state it ran in).
    pub replay: String,
    /// Calls compared before the end or the first difference.
    pub compared: usize,
    /// The first difference, in words; `None` when the replay matched.
    pub divergence: Option<String>,
}

/// Reads run `run_id` back from the audit log.
pub fn recorded(state: &StateStore, run_id: &str) -> Result<Recorded, ReplayError> {
    let entries = state.audit_of_run(run_id)?;
    let unreadable = |message: &str| ReplayError::Unreadable {
        run: run_id.to_owned(),
        message: message.to_owned(),
    };
    let started = entries
        .iter()
        .find(|e| e.kind == "run.started")
        .ok_or_else(|| ReplayError::UnknownRun(run_id.to_owned()))?;
    let text = |entry: &AuditEntry, key: &str| {
        entry
            .record
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let input = text(started, "input")
        .ok_or_else(|| unreadable("its input was blocked, so the model never saw it"))?;
    let roles = started
        .record
        .get("roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let principal = Principal {
        name: text(started, "principal")
            .ok_or_else(|| unreadable("run.started has no principal"))?,
        roles: roles.filter_map(Value::as_str).map(str::to_owned).collect(),
    };
    let mut responses = Vec::new();
    let mut decisions = Vec::new();
    for entry in &entries {
        match entry.kind.as_str() {
            "model.responded" => responses.push(step(&entry.record)),
            "tool.called" => decisions.push(ran(&entry.record)),
            "tool.refused" => decisions.push(refused(&entry.record)),
            "approval.requested" => decisions.push("awaiting approval".into()),
            _ => {}
        }
    }
    Ok(Recorded {
        agent: text(started, "agent").ok_or_else(|| unreadable("run.started has no agent"))?,
        principal,
        input,
        responses,
        decisions,
    })
}

/// Replays `recorded` with `agent` (over scratch state) and compares.
pub async fn replay(
    agent: &Agent,
    original: &str,
    recorded: &Recorded,
) -> Result<ReplayReport, StateError> {
    let model = Arc::new(ScriptedModel::new(
        format!("replay of {original}"),
        recorded.responses.clone(),
    ));
    let report = agent
        .clone()
        .with_model(model)
        .run(&recorded.principal, &recorded.input)
        .await?;
    let now = decisions(&report);
    let mut divergence = None;
    let mut compared = 0;
    for (i, (then, now)) in recorded.decisions.iter().zip(&now).enumerate() {
        if then != now {
            divergence = Some(format!("call {}: recorded {then}; replayed {now}", i + 1));
            break;
        }
        compared += 1;
    }
    if divergence.is_none() && recorded.decisions.len() != now.len() {
        divergence = Some(format!(
            "the recorded run made {} tool calls, the replay {}",
            recorded.decisions.len(),
            now.len()
        ));
    }
    Ok(ReplayReport {
        original: original.to_owned(),
        replay: report.run_id,
        compared,
        divergence,
    })
}

fn step(record: &Value) -> Step {
    let calls = record
        .get("calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|call| ScriptedCall {
            name: call
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            arguments: Value::String(
                call.get("raw_arguments")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        })
        .collect();
    let count = |key: &str| record.get(key).and_then(Value::as_u64).unwrap_or(0);
    Step {
        text: record
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_owned),
        calls,
        usage: Some(ScriptedUsage {
            input_tokens: count("gen_ai.usage.input_tokens"),
            output_tokens: count("gen_ai.usage.output_tokens"),
        }),
        finish: record
            .get("finish")
            .cloned()
            .and_then(|f| serde_json::from_value::<Finish>(f).ok()),
        error: None,
    }
}

fn ran(record: &Value) -> String {
    let function = record
        .get("function")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let outcome = record.get("outcome").cloned().unwrap_or(Value::Null);
    format!("ran {function} → {outcome}")
}

fn refused(record: &Value) -> String {
    let gate = record
        .get("gate")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("refused by {gate}")
}

/// The decisions of a fresh run, worded as [`recorded`] words the log's.
fn decisions(report: &RunReport) -> Vec<String> {
    report
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Call {
                decision: CallDecision::Ran { function, report },
                ..
            } => Some(format!(
                "ran {function} → {}",
                serde_json::to_value(&report.outcome).unwrap_or(Value::Null)
            )),
            Event::Call {
                decision: CallDecision::Refused { gate, .. },
                ..
            } => Some(format!("refused by {gate}")),
            Event::Call {
                decision: CallDecision::AwaitingApproval { .. },
                ..
            } => Some("awaiting approval".into()),
            Event::Model { .. } | Event::Masked { .. } => None,
        })
        .collect()
}
