//! Pausing a run for human approval, and resuming it once every approval is decided: what a
//! paused run keeps (everything needed to go on, in any process), and how decisions become
//! calls that run or refusals the model is told.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Agent, Beginning, Begun, Going, Run, RunReport, RunStatus};
use crate::calls::CallDecision;
use crate::gates::{Admitted, Principal, Refusal};
use crate::models::{Message, ModelRequest, TokenUsage, ToolCall, ToolResult};
use crate::routing::Route;
use crate::state::approvals::ApprovalRequest;
use crate::state::records::{AuditRecord, Decision};
use crate::state::switches::Target;
use crate::state::{StateError, StateStore};

/// A call that waits for a human, as a paused run keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Waiting {
    /// Its position among the turn's calls.
    pub(super) index: usize,
    /// The approval's number.
    pub(super) approval: i64,
    /// What to run once approved.
    pub(super) admitted: Admitted,
}

/// Everything needed to resume a paused run, stored as JSON.
#[derive(Serialize, Deserialize)]
pub(super) struct Paused {
    pub(super) principal: String,
    pub(super) prompt_version: String,
    pub(super) route: Route,
    pub(super) roles: BTreeSet<String>,
    /// The conversation before the paused turn.
    pub(super) request: ModelRequest,
    pub(super) turns: u32,
    pub(super) usage: TokenUsage,
    pub(super) argument_errors: u32,
    /// The paused turn: the model's text and calls, and the results known so far.
    pub(super) text: Option<String>,
    pub(super) calls: Vec<ToolCall>,
    pub(super) results: Vec<Option<ToolResult>>,
    pub(super) waiting: Vec<Waiting>,
}

/// A run paused for approval, as whoever resumes it needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PausedRun {
    /// Its agent.
    pub agent: String,
    /// The model turns it took so far (where a scripted model resumes).
    pub turns: usize,
}

/// Run `run_id` of `state`, if it is paused for approval.
pub fn paused_run(state: &StateStore, run_id: &str) -> Result<Option<PausedRun>, StateError> {
    let Some((agent, text)) = state.paused_run(run_id)? else {
        return Ok(None);
    };
    let paused: Paused = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        location: state.location().to_owned(),
        message: format!("paused run {run_id}: {e}"),
    })?;
    Ok(Some(PausedRun {
        agent,
        turns: paused.turns as usize,
    }))
}

/// The turn a paused run stopped in, its approvals decided: the calls to run now, and the
/// results and refusals known.
pub(super) struct Decided {
    text: Option<String>,
    calls: Vec<ToolCall>,
    results: Vec<Option<ToolResult>>,
    refused: Vec<(usize, CallDecision)>,
    approved: Vec<(usize, Admitted)>,
}

impl Agent {
    /// Resumes run `run_id`, paused for approvals, once every one of them is decided: approved
    /// calls run (unless their tool was switched off meanwhile), denied ones are reported to the
    /// model as denied, and the run goes on. `None` when the run is not this agent's paused run,
    /// still waits for a decision, or another resumer (in any process) took it first.
    pub async fn resume(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        match self.take_up(run_id)? {
            Some(begun) => self.proceed(begun).await.map(Some),
            None => Ok(None),
        }
    }

    /// The first steps of [`Agent::resume`], all recorded before it returns (the run taken
    /// from the paused ones, `run.resumed`, the denials settled): a caller can say the run
    /// goes on and have it found so, then [`Agent::proceed`] with it.
    pub fn take_up(&self, run_id: &str) -> Result<Option<Begun>, StateError> {
        let Some(text) = self
            .gate
            .state()
            .take_decided_run(run_id, &self.settings.name)?
        else {
            return Ok(None);
        };
        let paused: Paused = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            location: self.gate.state().location().to_owned(),
            message: format!("paused run {run_id}: {e}"),
        })?;
        let decided: BTreeMap<i64, ApprovalRequest> = self
            .gate
            .state()
            .approvals_of_run(run_id)?
            .into_iter()
            .filter(|a| a.decision.is_some())
            .map(|a| (a.id, a))
            .collect();
        let principal = Principal {
            name: paused.principal,
            roles: paused.roles,
        };
        let mut run = Run::new(
            run_id.to_owned(),
            paused.turns,
            paused.usage,
            paused.argument_errors,
        );
        run.report.prompt_version = paused.prompt_version.clone();
        run.route = paused.route;
        let span = crate::telemetry::agent_span(
            &self.settings.name,
            run_id,
            &self.model.id(),
            &paused.prompt_version,
        );
        let traced = span.enter();
        self.gate.state().append_audit(
            run_id,
            AuditRecord::RunResumed {
                approvals: decided.keys().copied().collect(),
            },
        )?;
        let mut refused = Vec::new();
        let mut approved = Vec::new();
        for waiting in paused.waiting {
            let approval = &decided[&waiting.approval];
            let tool = waiting
                .admitted
                .function
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            let killed = self.gate.state().killed(&Target::Tool(tool.clone()))?;
            if approval.decision == Some(Decision::Approved) && killed.is_none() {
                approved.push((waiting.index, waiting.admitted));
                continue;
            }
            if let Some(reservation) = waiting.admitted.fuel {
                self.gate.state().settle(reservation, 0)?;
            }
            refused.push((
                waiting.index,
                match killed {
                    Some(killed) if approval.decision == Some(Decision::Approved) => {
                        Refusal::Killed {
                            tool,
                            reason: killed.reason,
                        }
                        .into()
                    }
                    _ => Refusal::Denied {
                        by: approval
                            .decided_by
                            .clone()
                            .unwrap_or_else(|| "a reviewer".into()),
                        reason: approval
                            .reason
                            .clone()
                            .unwrap_or_else(|| "no reason given".into()),
                    }
                    .into(),
                },
            ));
        }
        drop(traced);
        Ok(Some(Begun(Beginning::Going(Box::new(Going {
            span,
            run,
            principal,
            request: paused.request,
            decided: Some(Decided {
                text: paused.text,
                calls: paused.calls,
                results: paused.results,
                refused,
                approved,
            }),
        })))))
    }

    /// Runs the approved calls of the turn a run was paused in, records every decision, and
    /// adds the turn to the conversation.
    pub(super) async fn finish_turn(
        &self,
        run: &mut Run,
        principal: &Principal,
        request: &mut ModelRequest,
        turn: Decided,
    ) -> Result<(), StateError> {
        let Decided {
            text,
            calls,
            mut results,
            refused,
            approved,
        } = turn;
        let (indexes, approved): (Vec<usize>, Vec<_>) = approved.into_iter().unzip();
        let ran = self
            .gate
            .run(&principal.call_context(&run.report.run_id), approved)
            .await?;
        let mut decisions = refused;
        decisions.extend(indexes.into_iter().zip(ran));
        for (index, decision) in decisions {
            results[index] = Some(self.note_call(run, &calls[index], decision)?);
        }
        request.messages.push(Message::Assistant { text, calls });
        request.messages.push(Message::ToolResults {
            results: results.into_iter().flatten().collect(),
        });
        Ok(())
    }

    /// Keeps the run's state for [`Agent::resume`] and reports it as paused.
    pub(super) fn pause(&self, mut run: Run, paused: Paused) -> Result<RunReport, StateError> {
        let run_id = run.report.run_id.clone();
        let approvals: Vec<String> = paused
            .waiting
            .iter()
            .map(|w| format!("{} ({})", w.approval, w.admitted.function))
            .collect();
        let state = serde_json::to_string(&paused).map_err(|e| StateError::Corrupt {
            location: self.gate.state().location().to_owned(),
            message: format!("cannot keep run {run_id}: {e}"),
        })?;
        self.gate
            .state()
            .pause_run(&run_id, &self.settings.name, &state)?;
        self.gate.state().append_audit(
            &run_id,
            AuditRecord::RunPaused {
                approvals: paused.waiting.iter().map(|w| w.approval).collect(),
            },
        )?;
        crate::telemetry::run_ended(&tracing::Span::current(), "paused", false);
        run.report.status = RunStatus::Paused;
        run.report.answer = format!(
            "Paused: waiting for human approval of {}. Decide with `harness approvals approve ID` or `harness approvals deny ID --reason ...`.",
            approvals.join(", ")
        );
        Ok(run.report)
    }
}
