//! Replay: re-run a recorded run with the model responses the audit log holds, re-executing
//! its tools in the sandbox, and report the first divergence — a different decision (a gate
//! refuses now, or no longer), a different tool, or a different result — or that it matched.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::gates::Principal;
use crate::guards::pii::PiiPolicy;
use crate::models::scripted::{ScriptedCall, ScriptedModel, ScriptedUsage, Step};
use crate::run::{Agent, CallDecision, Event, RunReport};
use crate::scratch::{Scratch, ScratchError};
use crate::state::records::{AuditRecord, Gate, ModelResponded};
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
    /// The agent that ran it cannot be set up again (the whitelist no longer has it, or its
    /// tools or model cannot be loaded).
    #[error("run `{run}`: {error}")]
    Scratch {
        /// The run.
        run: String,
        /// Why.
        error: Box<ScratchError>,
    },
    /// The run's records are not what a run writes.
    #[error("run `{run}`: {message}")]
    Unreadable {
        /// The run.
        run: String,
        /// What is missing or wrong.
        message: String,
    },
}

/// What happened to one tool call, as replay compares it.
#[derive(Clone, Debug, PartialEq)]
pub enum Decided {
    /// It ran; its outcome as the log keeps it (personal data masked).
    Ran {
        /// `tool.function`.
        function: String,
        /// `{"kind": "ok", "value": …}`, a tool error, or a stop.
        outcome: Value,
    },
    /// A gate refused it.
    Refused(Gate),
    /// It waited for a human.
    AwaitingApproval,
}

impl fmt::Display for Decided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decided::Ran { function, outcome } => write!(f, "ran {function} → {outcome}"),
            Decided::Refused(gate) => write!(f, "refused by {gate}"),
            Decided::AwaitingApproval => f.write_str("awaiting approval"),
        }
    }
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
    /// Each tool call's decision, in order.
    pub decisions: Vec<Decided>,
}

/// What replaying found.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// The recorded run.
    pub original: String,
    /// The new run (in the audit log of the state it ran in).
    pub replay: String,
    /// The recorded model responses it replayed.
    pub responses: usize,
    /// Calls compared before the end or the first difference.
    pub compared: usize,
    /// The first difference, in words; `None` when the replay matched.
    pub divergence: Option<String>,
}

/// Reads run `run_id` back from the audit log.
pub fn recorded(state: &StateStore, run_id: &str) -> Result<Recorded, ReplayError> {
    let entries = state.audit_of_run(run_id)?;
    let started = entries
        .iter()
        .find_map(|e| match &e.record {
            AuditRecord::RunStarted(started) => Some(started),
            _ => None,
        })
        .ok_or_else(|| ReplayError::UnknownRun(run_id.to_owned()))?;
    let input = started
        .input
        .clone()
        .ok_or_else(|| ReplayError::Unreadable {
            run: run_id.to_owned(),
            message: "its input was blocked, so the model never saw it".into(),
        })?;
    let mut responses = Vec::new();
    let mut decisions = Vec::new();
    for entry in &entries {
        match &entry.record {
            AuditRecord::ModelResponded(response) => responses.push(step(response)),
            AuditRecord::ToolCalled(called) => decisions.push(Decided::Ran {
                function: called.function.clone(),
                outcome: called.outcome.clone(),
            }),
            AuditRecord::ToolRefused(refused) => decisions.push(Decided::Refused(refused.gate)),
            AuditRecord::ApprovalRequested(_) => decisions.push(Decided::AwaitingApproval),
            _ => {}
        }
    }
    Ok(Recorded {
        agent: started.agent.clone(),
        principal: Principal {
            name: started.principal.clone(),
            roles: started.roles.iter().cloned().collect(),
        },
        input,
        responses,
        decisions,
    })
}

/// Replays run `run_id` of `state` as `config` now stands: its recorded model responses, its
/// tools re-run in a scratch host whose grants reach nothing outside it, keys read from `env`.
/// With the report come the grants that were restricted to make it so.
pub async fn replay_run(
    config: &Config,
    state: &StateStore,
    run_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ReplayReport, Vec<String>), ReplayError> {
    let recorded = recorded(state, run_id)?;
    let (config, restricted) = config.clone().without_side_effects();
    let scratch =
        Scratch::new(config, &recorded.agent, env).map_err(|error| ReplayError::Scratch {
            run: run_id.to_owned(),
            error: Box::new(error),
        })?;
    let report = replay(scratch.agent(), run_id, &recorded).await?;
    Ok((report, restricted))
}

/// Replays `recorded` with `agent` (over scratch state) and compares. Give it a host whose tools
/// cannot reach anything outside scratch (see `Policy::without_side_effects`): replay re-runs
/// the tools.
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
    let now = decisions(&report, &agent.settings().pii);
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
        responses: recorded.responses.len(),
        compared,
        divergence,
    })
}

/// The scripted step that gives back a recorded response.
fn step(response: &ModelResponded) -> Step {
    Step {
        text: response.text.clone(),
        calls: response
            .calls
            .iter()
            .map(|call| ScriptedCall {
                name: call.name.clone(),
                arguments: Value::String(call.raw_arguments.clone()),
            })
            .collect(),
        usage: Some(ScriptedUsage {
            input_tokens: response.input_tokens,
            output_tokens: response.output_tokens,
        }),
        finish: Some(response.finish.clone()),
        error: None,
    }
}

/// The decisions of a fresh run, as the log would keep them (results masked by `pii`).
fn decisions(report: &RunReport, pii: &PiiPolicy) -> Vec<Decided> {
    report
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Call {
                decision: CallDecision::Ran { function, report },
                ..
            } => Some(Decided::Ran {
                function: function.clone(),
                outcome: serde_json::to_value(&report.outcome)
                    .map_or(Value::Null, |o| pii.mask_json(&o)),
            }),
            Event::Call {
                decision: CallDecision::Refused { gate, .. },
                ..
            } => Some(Decided::Refused(*gate)),
            Event::Call {
                decision: CallDecision::AwaitingApproval { .. },
                ..
            } => Some(Decided::AwaitingApproval),
            Event::Model { .. } | Event::Masked { .. } => None,
        })
        .collect()
}
