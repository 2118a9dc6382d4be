//! The tool calls of one turn: each passes the gates in order, the admitted ones run
//! concurrently in the sandbox (both through the [`ToolGate`](crate::calls::ToolGate) every
//! front end shares), and each decision is recorded and worded for the model, with personal
//! data screened out of what it reads.

use harness_sandbox::Outcome;

use super::pause::Waiting;
use super::{Agent, CallDecision, Event, Run};
use crate::calls::Admission;
use crate::gates::Principal;
use crate::guards::pii::{Kind, Screened};
use crate::models::{ToolCall, ToolResult};
use crate::state::StateError;
use crate::state::records::{AuditRecord, Gate};

impl Agent {
    /// Gates each call in order and runs the admitted ones concurrently. Returns, in the
    /// model's order, each call's result — or `None` for a call that waits for a human, listed
    /// in the second part.
    pub(super) async fn call_tools(
        &self,
        run: &mut Run,
        principal: &Principal,
        calls: &[ToolCall],
    ) -> Result<(Vec<Option<ToolResult>>, Vec<Waiting>), StateError> {
        let run_id = run.report.run_id.clone();
        let mut decisions: Vec<Option<CallDecision>> = vec![None; calls.len()];
        let mut admitted = Vec::new();
        let mut waiting = Vec::new();
        for (index, call) in calls.iter().enumerate() {
            match self.gate.admit(&run.route, principal, &run_id, call)? {
                Admission::Awaiting { admitted, approval } => waiting.push(Waiting {
                    index,
                    approval,
                    admitted,
                }),
                Admission::Admitted(ok) => admitted.push((index, ok)),
                Admission::Refused(refusal) => decisions[index] = Some(refusal.into()),
            }
        }
        let (indexes, admitted): (Vec<usize>, Vec<_>) = admitted.into_iter().unzip();
        let ran = self
            .gate
            .run(&principal.call_context(&run_id), admitted)
            .await?;
        for (index, decision) in indexes.into_iter().zip(ran) {
            decisions[index] = Some(decision);
        }
        for w in &waiting {
            decisions[w.index] = Some(CallDecision::AwaitingApproval {
                approval: w.approval,
            });
        }
        let mut results = Vec::new();
        for (call, decision) in calls.iter().zip(decisions) {
            // Every call was refused, ran, or waits: a call left undecided would be a bug, and
            // reaches the model as one rather than stopping the host.
            let decision = decision.unwrap_or_else(|| CallDecision::Refused {
                gate: Gate::Routing,
                reason: "the harness lost this call's decision".into(),
            });
            let awaiting = matches!(decision, CallDecision::AwaitingApproval { .. });
            let result = self.note_call(run, call, decision)?;
            results.push((!awaiting).then_some(result));
        }
        Ok((results, waiting))
    }

    /// Records a call's decision (audit record and event) and returns what the model is told.
    pub(super) fn note_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: CallDecision,
    ) -> Result<ToolResult, StateError> {
        let result = self.record_call(run, call, &decision)?;
        self.step(
            run,
            Event::Call {
                call: call.clone(),
                decision,
                result: result.clone(),
            },
        );
        Ok(result)
    }

    /// Audits one call's decision and words its result for the model.
    fn record_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: &CallDecision,
    ) -> Result<ToolResult, StateError> {
        self.gate
            .record(&run.report.run_id, call, decision, &self.settings.pii)?;
        let (content, is_error) = match decision {
            CallDecision::AwaitingApproval { approval } => {
                return Ok(ToolResult {
                    call_id: call.id.clone(),
                    content: format!("waiting for human approval {approval}"),
                    is_error: false,
                });
            }
            CallDecision::Refused { gate, reason } => {
                if *gate == Gate::Arguments {
                    run.argument_errors += 1;
                }
                (format!("refused by the harness ({gate}): {reason}"), true)
            }
            CallDecision::Ran { function, report } => {
                self.check_error_rate(run, function)?;
                match &report.outcome {
                    Outcome::Ok { value } => (value.to_string(), false),
                    Outcome::ToolError { error } => {
                        (format!("the tool returned an error: {error}"), true)
                    }
                    Outcome::Stopped { stop } => (format!("the tool was stopped: {stop}"), true),
                    other => (format!("the tool call ended as {}", other.kind()), true),
                }
            }
        };
        let screened = self.settings.pii.apply(&content);
        let (content, is_error) = match self.note_screening(run, &call.id, screened)? {
            Ok(content) => (content, is_error),
            Err(kind) => (
                format!(
                    "the tool's result was withheld: it contains {} data",
                    kind.name()
                ),
                true,
            ),
        };
        Ok(ToolResult {
            call_id: call.id.clone(),
            content,
            is_error,
        })
    }

    /// Records what screening found (an event and an audit record); returns the text to send,
    /// or the kind that blocks it.
    pub(super) fn note_screening(
        &self,
        run: &mut Run,
        place: &str,
        screened: Screened,
    ) -> Result<Result<String, Kind>, StateError> {
        let run_id = run.report.run_id.clone();
        match screened {
            Screened::Passed { text, found } => {
                if !found.is_empty() {
                    self.gate.state().append_audit(
                        &run_id,
                        AuditRecord::PiiMasked {
                            place: place.to_owned(),
                            found: found.clone(),
                        },
                    )?;
                    self.step(
                        run,
                        Event::Masked {
                            place: place.to_owned(),
                            found,
                        },
                    );
                }
                Ok(Ok(text))
            }
            Screened::Blocked { kind, found } => {
                self.gate.state().append_audit(
                    &run_id,
                    AuditRecord::PiiBlocked {
                        place: place.to_owned(),
                        kind,
                        found,
                    },
                )?;
                Ok(Err(kind))
            }
        }
    }
}
