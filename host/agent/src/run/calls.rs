//! The tool calls of one turn: each passes the gates in order, the admitted ones run
//! concurrently in the sandbox, and each decision is recorded and worded for the model, with
//! personal data screened out of what it reads.

use harness_sandbox::{CallContext, Outcome};
use serde_json::Value;

use super::pause::Waiting;
use super::{Agent, CallDecision, Event, Run, caller_context, telemetry};
use crate::gates::{self, Admitted, Principal, Refusal};
use crate::guards::pii::{Kind, Screened};
use crate::models::{ToolCall, ToolResult};
use crate::state::StateError;
use crate::state::records::{AuditRecord, Gate, ToolCalled, ToolRefused};

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
            match gates::check(
                &self.host,
                &self.state,
                &self.config,
                &self.settings,
                &run.route,
                principal,
                &run_id,
                call,
            )? {
                Ok(ok) if ok.needs_approval => {
                    let arguments = ok.arguments.to_string();
                    let approval = self.state.request_approval(
                        &run_id,
                        &call.id,
                        &ok.function,
                        &arguments,
                        &principal.name,
                    )?;
                    waiting.push(Waiting {
                        index,
                        approval,
                        admitted: ok,
                    });
                }
                Ok(ok) => admitted.push((index, ok)),
                Err(refusal) => decisions[index] = Some(refused(refusal)),
            }
        }
        let caller = caller_context(principal, &run_id);
        for (index, decision) in self.execute(&caller, calls, admitted).await? {
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

    /// Runs admitted calls concurrently in the sandbox and settles their fuel.
    pub(super) async fn execute(
        &self,
        caller: &CallContext,
        calls: &[ToolCall],
        admitted: Vec<(usize, Admitted)>,
    ) -> Result<Vec<(usize, CallDecision)>, StateError> {
        let runs = admitted
            .iter()
            .map(|(_, ok)| self.host.call_json(&ok.function, &ok.arguments, caller));
        let reports = futures::future::join_all(runs).await;
        let mut decisions = Vec::new();
        for ((index, ok), report) in admitted.into_iter().zip(reports) {
            if let Some(reservation) = ok.fuel {
                let used = report.as_ref().map_or(0, |r| r.usage.fuel);
                self.state.settle(reservation, used)?;
            }
            decisions.push((
                index,
                match report {
                    Ok(report) => CallDecision::Ran {
                        function: ok.function,
                        report: Box::new(report),
                    },
                    // The host validates arguments against the schema before running anything.
                    Err(error) => refused(Refusal::InvalidArguments {
                        tool: calls[index].name.clone(),
                        message: error.to_string(),
                    }),
                },
            ));
        }
        Ok(decisions)
    }

    /// Records a call's decision (audit record and event) and returns what the model is told.
    pub(super) fn note_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: CallDecision,
    ) -> Result<ToolResult, StateError> {
        let result = self.record_call(run, call, &decision)?;
        run.report.events.push(Event::Call {
            call: call.clone(),
            decision,
            result: result.clone(),
        });
        Ok(result)
    }

    /// Audits one call's decision and words its result for the model.
    fn record_call(
        &self,
        run: &mut Run,
        call: &ToolCall,
        decision: &CallDecision,
    ) -> Result<ToolResult, StateError> {
        let (record, content, is_error) = match decision {
            // Its audit record is the approval request itself.
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
                (
                    AuditRecord::ToolRefused(ToolRefused {
                        call_id: call.id.clone(),
                        name: call.name.clone(),
                        gate: *gate,
                        reason: reason.clone(),
                    }),
                    format!("refused by the harness ({gate}): {reason}"),
                    true,
                )
            }
            CallDecision::Ran { function, report } => {
                telemetry::tool_call(&run.report.run_id, &call.id, function, report);
                let (content, is_error) = match &report.outcome {
                    Outcome::Ok { value } => (value.to_string(), false),
                    Outcome::ToolError { error } => {
                        (format!("the tool returned an error: {error}"), true)
                    }
                    Outcome::Stopped { stop } => (format!("the tool was stopped: {stop}"), true),
                    other => (format!("the tool call ended as {}", other.kind()), true),
                };
                // The log keeps the result masked, whatever reaches the model.
                let outcome = serde_json::to_value(&report.outcome)
                    .map_or(Value::Null, |o| self.settings.pii.mask_json(&o));
                (
                    AuditRecord::ToolCalled(ToolCalled {
                        call_id: call.id.clone(),
                        function: function.clone(),
                        outcome,
                        fuel: report.usage.fuel,
                        wall_us: u64::try_from(report.usage.wall.as_micros()).unwrap_or(u64::MAX),
                        denials: report.denials.clone(),
                    }),
                    content,
                    is_error,
                )
            }
        };
        self.state.append_audit(&run.report.run_id, record)?;
        if let CallDecision::Ran { function, .. } = decision {
            self.check_error_rate(run, function)?;
        }
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
                    self.state.append_audit(
                        &run_id,
                        AuditRecord::PiiMasked {
                            place: place.to_owned(),
                            found: found.clone(),
                        },
                    )?;
                    run.report.events.push(Event::Masked {
                        place: place.to_owned(),
                        found,
                    });
                }
                Ok(Ok(text))
            }
            Screened::Blocked { kind, found } => {
                self.state.append_audit(
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

/// The decision for a call a gate refused.
pub(super) fn refused(refusal: Refusal) -> CallDecision {
    CallDecision::Refused {
        gate: refusal.gate(),
        reason: refusal.to_string(),
    }
}
