//! The one path from a proposed tool call to its outcome, shared by every front end (agent
//! runs, MCP, the HTTP API): the [gates] in order, the user's confirmation and a
//! human approval where the tool needs them, the sandbox, and the audit records. [`ToolGate`]
//! holds what that path needs.

use std::sync::Arc;

use harness_sandbox::{CallContext, CallReport, Host};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::gates::{self, Admitted, Principal, Refusal};
use crate::guards::pii::PiiPolicy;
use crate::models::ToolCall;
use crate::routing::Route;
use crate::state::approvals::Claim;
use crate::state::records::{AuditRecord, Decision, Gate, ToolCalled, ToolConfirmed, ToolRefused};
use crate::state::{Durability, StateError, StateStore};
use crate::telemetry;
use crate::webhooks::Webhooks;
use tracing::{Instrument, Span};

/// What happened to one proposed tool call.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CallDecision {
    /// A gate refused it; it never reached the sandbox.
    Refused {
        /// The gate.
        gate: Gate,
        /// Why, in words for the caller.
        reason: String,
    },
    /// It waits for a human to approve it.
    AwaitingApproval {
        /// The approval's number.
        approval: i64,
    },
    /// It ran in the sandbox.
    Ran {
        /// `tool.function`.
        function: String,
        /// The host's report: outcome, fuel, time, denials.
        report: Box<CallReport>,
    },
}

impl From<Refusal> for CallDecision {
    fn from(refusal: Refusal) -> CallDecision {
        CallDecision::Refused {
            gate: refusal.gate(),
            reason: refusal.to_string(),
        }
    }
}

/// The answer of the user a call is made for to its tool's `confirm` gate, as the front end
/// that asked got it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Confirmation {
    /// Yes, to this call; `how` names the way they were asked, for the audit record.
    Confirmed {
        /// For example `MCP elicitation`.
        how: String,
    },
    /// They were asked, and their answer comes with the same call made again: this call is
    /// refused, saying so.
    Asked,
    /// No, no answer in time, or no way to ask them: `reason` says which.
    Refused {
        /// In words for the caller.
        reason: String,
    },
}

/// How a call came through the gates.
#[derive(Debug)]
pub enum Admission {
    /// It may run.
    Admitted(Admitted),
    /// It may run once a human approves it: the approval was requested.
    Awaiting {
        /// What to run once approved.
        admitted: Admitted,
        /// The approval's number.
        approval: i64,
    },
    /// A gate refused it.
    Refused(Refusal),
}

/// The gates and the sandbox behind them, with the state they record in: what every front end
/// calls tools through. Cheap to clone.
#[derive(Clone)]
pub struct ToolGate {
    host: Host,
    state: Arc<StateStore>,
    config: Arc<Config>,
    webhooks: Webhooks,
}

impl ToolGate {
    /// The gate over `host`, recording in `state`, with the gates of `config`.
    pub fn new(host: Host, state: Arc<StateStore>, config: Arc<Config>) -> ToolGate {
        ToolGate {
            webhooks: Webhooks::new(config.webhooks()),
            host,
            state,
            config,
        }
    }

    /// Where the alerts of runs through this gate are delivered.
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// The sandbox.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The state the gates count in and the records go to.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// The whitelist.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Passes `call` of run `run_id` through the gates in order (kill switch, routing, role,
    /// rate, budget, arguments); a call its tool's `approval` or `confirm` applies to gets an
    /// approval request of its own, decided for this run (which pauses until then): a run has
    /// no client to ask its user, so the user, or an approver, decides it there.
    pub fn admit(
        &self,
        route: &Route,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
    ) -> Result<Admission, StateError> {
        Ok(match self.check(route, principal, run_id, call)? {
            Ok(admitted) if admitted.needs_approval || admitted.needs_confirmation => {
                let approval = self.request(principal, run_id, call, &admitted)?;
                Admission::Awaiting { admitted, approval }
            }
            Ok(admitted) => Admission::Admitted(admitted),
            Err(refusal) => Admission::Refused(refusal),
        })
    }

    /// The approval gate for a caller without a run to pause (MCP, the HTTP API): the same
    /// call made again finds its approval — still waiting, or decided, in which case the
    /// decision applies to this one call and is used up.
    fn claim(
        &self,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
        admitted: Admitted,
    ) -> Result<Admission, StateError> {
        if !admitted.needs_approval {
            return Ok(Admission::Admitted(admitted));
        }
        let arguments = canonical(&admitted.arguments);
        let claim = self
            .state
            .claim_approval(&principal.name, &admitted.function, &arguments)?;
        let waiting = match claim {
            Some(Claim::Decided {
                decision: Decision::Approved,
                ..
            }) => return Ok(Admission::Admitted(admitted)),
            Some(Claim::Decided { by, reason, .. }) => {
                self.release(&admitted)?;
                return Ok(Admission::Refused(Refusal::Denied { by, reason }));
            }
            Some(Claim::Pending { id }) => id,
            None => self.request(principal, run_id, call, &admitted)?,
        };
        // Nothing runs until a person decides: the fuel reserved for it goes back.
        self.release(&admitted)?;
        Ok(Admission::Awaiting {
            admitted,
            approval: waiting,
        })
    }

    fn check(
        &self,
        route: &Route,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
    ) -> Result<Result<Admitted, Refusal>, StateError> {
        gates::check(
            &self.host,
            &self.state,
            &self.config,
            route,
            principal,
            run_id,
            call,
        )
    }

    /// [`ToolGate::check`] on a blocking thread when the admission waits for the disk or the
    /// network (a shared PostgreSQL), so the async workers serve other calls meanwhile and the
    /// calls admitted together share one flush (see [`Durability::Admissions`]); on this thread
    /// when it waits for neither.
    async fn check_off_workers(
        &self,
        route: &Route,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
    ) -> Result<Result<Admitted, Refusal>, StateError> {
        if self.state.durability() == Durability::Os && !self.state.is_shared() {
            return self.check(route, principal, run_id, call);
        }
        let (gate, route, principal, run_id, call) = (
            self.clone(),
            route.clone(),
            principal.clone(),
            run_id.to_owned(),
            call.clone(),
        );
        tokio::task::spawn_blocking(move || gate.check(&route, &principal, &run_id, &call))
            .await
            .map_err(|e| StateError::Interrupted {
                location: self.state.location().to_owned(),
                message: format!("admitting a call: {e}"),
            })?
    }

    /// Asks a person to approve `admitted`, the arguments kept in canonical form (keys sorted)
    /// so the same call made again finds it.
    fn request(
        &self,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
        admitted: &Admitted,
    ) -> Result<i64, StateError> {
        self.state.request_approval(
            run_id,
            &call.id,
            &admitted.function,
            &canonical(&admitted.arguments),
            &principal.name,
        )
    }

    /// The confirmation gate: asks the user through `ask` when the tool's `confirm` applies,
    /// and records a yes (`tool.confirmed`). `Err` is the refusal when the call does not run.
    async fn confirm(
        &self,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
        admitted: Admitted,
        ask: impl AsyncFnOnce(&Admitted) -> Confirmation,
    ) -> Result<Result<Admitted, Refusal>, StateError> {
        if !admitted.needs_confirmation {
            return Ok(Ok(admitted));
        }
        let refused = match ask(&admitted).await {
            Confirmation::Confirmed { how } => {
                let record = AuditRecord::ToolConfirmed(ToolConfirmed {
                    call_id: call.id.clone(),
                    function: admitted.function.clone(),
                    principal: principal.name.clone(),
                    how,
                });
                self.state.append_audit(run_id, record)?;
                return Ok(Ok(admitted));
            }
            Confirmation::Asked => Refusal::Unconfirmed {
                tool: admitted.function.clone(),
                reason: "they were asked, and their answer comes with the same call made again"
                    .into(),
            },
            Confirmation::Refused { reason } => Refusal::Unconfirmed {
                tool: admitted.function.clone(),
                reason,
            },
        };
        self.release(&admitted)?;
        Ok(Err(refused))
    }

    /// Gives back the fuel reserved for a call that does not run now.
    fn release(&self, admitted: &Admitted) -> Result<(), StateError> {
        match admitted.fuel {
            Some(reservation) => self.state.settle(reservation, 0),
            None => Ok(()),
        }
    }

    /// Runs admitted calls concurrently in the sandbox and settles their fuel; the decisions
    /// come back in the same order. Arguments the sandbox finds invalid are a refusal.
    pub async fn run(
        &self,
        caller: &CallContext,
        admitted: Vec<Admitted>,
    ) -> Result<Vec<CallDecision>, StateError> {
        let spans: Vec<Span> = admitted
            .iter()
            .map(|ok| telemetry::tool_span(&ok.function, &caller.run_id))
            .collect();
        let runs = admitted.iter().zip(&spans).map(|(ok, span)| {
            self.host
                .call_json(&ok.function, &ok.arguments, caller)
                .instrument(span.clone())
        });
        let reports = futures::future::join_all(runs).await;
        let mut decisions = Vec::with_capacity(reports.len());
        for ((ok, report), span) in admitted.into_iter().zip(reports).zip(spans) {
            if let Some(reservation) = ok.fuel {
                let used = report.as_ref().map_or(0, |r| r.usage.fuel);
                self.state.settle(reservation, used)?;
            }
            if let Ok(report) = &report {
                telemetry::tool_ran(&span, report);
            }
            decisions.push(match report {
                Ok(report) => CallDecision::Ran {
                    function: ok.function,
                    report: Box::new(report),
                },
                Err(error) => Refusal::InvalidArguments {
                    tool: ok.function,
                    message: error.to_string(),
                }
                .into(),
            });
        }
        Ok(decisions)
    }

    /// Records `decision` on `call` in run `run_id`: `tool.refused`, or `tool.called` with its
    /// outcome masked by `pii` (the approval request is the record of a waiting call).
    pub fn record(
        &self,
        run_id: &str,
        call: &ToolCall,
        decision: &CallDecision,
        pii: &PiiPolicy,
    ) -> Result<(), StateError> {
        let record = match decision {
            CallDecision::AwaitingApproval { .. } => return Ok(()),
            CallDecision::Refused { gate, reason } => AuditRecord::ToolRefused(ToolRefused {
                call_id: call.id.clone(),
                name: call.name.clone(),
                gate: *gate,
                reason: reason.clone(),
            }),
            CallDecision::Ran { function, report } => {
                let outcome = serde_json::to_value(&report.outcome)
                    .map_or(Value::Null, |o| pii.mask_json(&o));
                AuditRecord::ToolCalled(ToolCalled {
                    call_id: call.id.clone(),
                    function: function.clone(),
                    outcome,
                    fuel: report.usage.fuel,
                    wall_us: u64::try_from(report.usage.wall.as_micros()).unwrap_or(u64::MAX),
                    denials: report.denials.clone(),
                })
            }
        };
        self.state.append_audit(run_id, record)?;
        Ok(())
    }

    /// One call from start to end, as a front end without a run makes it: the gates; the
    /// user's confirmation, asked through `ask` when the tool's `confirm` applies; the approval,
    /// when its `approval` does (waiting, the call ends [`CallDecision::AwaitingApproval`], and
    /// the same call made again once a person decided runs or is refused, once); the sandbox;
    /// and the record.
    pub async fn call(
        &self,
        route: &Route,
        principal: &Principal,
        run_id: &str,
        call: &ToolCall,
        pii: &PiiPolicy,
        ask: impl AsyncFnOnce(&Admitted) -> Confirmation,
    ) -> Result<CallDecision, StateError> {
        let admission = match self
            .check_off_workers(route, principal, run_id, call)
            .await?
        {
            Err(refusal) => Admission::Refused(refusal),
            Ok(admitted) => match self.confirm(principal, run_id, call, admitted, ask).await? {
                Ok(admitted) => self.claim(principal, run_id, call, admitted)?,
                Err(refusal) => Admission::Refused(refusal),
            },
        };
        let decision = match admission {
            Admission::Refused(refusal) => refusal.into(),
            Admission::Awaiting { approval, .. } => CallDecision::AwaitingApproval { approval },
            Admission::Admitted(admitted) => {
                let caller = principal.call_context(run_id);
                let mut decisions = self.run(&caller, vec![admitted]).await?;
                decisions.pop().unwrap_or_else(|| CallDecision::Refused {
                    gate: Gate::Routing,
                    reason: "the sandbox returned no outcome".into(),
                })
            }
        };
        self.record(run_id, call, &decision, pii)?;
        Ok(decision)
    }
}

/// `value` as JSON with every object's keys in order: one text for the same arguments however
/// a client ordered them.
pub fn canonical(value: &Value) -> String {
    harness_sandbox::canonical_json(value).to_string()
}

/// `PREFIX-` and 16 hex digits, unique per `who` (agent, principal), process, instant and call:
/// the id of an agent run (`run-…`) or of a call made outside one (`mcp-…`).
pub fn new_run_id(prefix: &str, who: &str) -> String {
    use sha2::{Digest, Sha256};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::digest(format!("{who}\n{now}\n{}\n{n}", std::process::id()));
    format!("{prefix}-{}", &hex::encode(digest)[..16])
}
