//! The gates every tool call an agent proposes passes, in order, before the sandbox runs it:
//! kill switch → routing (is the tool in the request's route?) → role → rate limit → fuel budget →
//! arguments; then approval, when the tool needs a human's (the run pauses), and confirmation,
//! when it needs its user's (see [`ToolGate::call`](crate::calls::ToolGate::call)). Each refusal
//! is an audit record and a plain message back to the model.

use std::collections::BTreeSet;

use harness_db::params;
use serde_json::Value;

use crate::config::{Config, Rate};
use crate::models::ToolCall;
use crate::routing::Route;
use crate::state::audit::since;
use crate::state::ledger::{Budget, Exhausted, Reservation};
use crate::state::records::{AuditRecord, Gate, ToolAdmitted};
use crate::state::switches::{self, Target};
use crate::state::{StateError, StateStore};
use harness_sandbox::{CallContext, Host};

/// Why a gate refused a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The tool is switched off.
    #[error("the tool `{tool}` is switched off: {reason}")]
    Killed {
        /// The tool.
        tool: String,
        /// Why, as the operator said.
        reason: String,
    },
    /// No whitelisted tool function has this name.
    #[error("there is no tool named `{name}`")]
    UnknownTool {
        /// The name the model used.
        name: String,
    },
    /// The tool exists but the request's route does not include it.
    #[error("the tool `{tool}` is not available here (the request was routed to `{route}`)")]
    NotRouted {
        /// The tool.
        tool: String,
        /// The route.
        route: String,
    },
    /// The principal has none of the roles the tool needs.
    #[error("`{tool}` needs one of the roles {}; {principal} has {}", list(needs), if has.is_empty() { "none".to_owned() } else { list(has) })]
    Role {
        /// The tool.
        tool: String,
        /// Who asked.
        principal: String,
        /// The roles that would do.
        needs: BTreeSet<String>,
        /// The roles the principal has.
        has: BTreeSet<String>,
    },
    /// The principal used up the tool's rate.
    #[error("{principal} may call `{tool}` {rate}; try again later")]
    RateLimited {
        /// The tool.
        tool: String,
        /// Who asked.
        principal: String,
        /// The limit.
        rate: Rate,
    },
    /// The principal's tool fuel budget cannot cover the tool's fuel limit.
    #[error("`{tool}` cannot run: {exhausted}")]
    Budget {
        /// The tool.
        tool: String,
        /// Which budget, and what is left.
        exhausted: Exhausted,
    },
    /// A person denied the call.
    #[error("denied by {by}: {reason}")]
    Denied {
        /// Who.
        by: String,
        /// Why, as they said.
        reason: String,
    },
    /// The user the call was made for did not confirm it.
    #[error("`{tool}` needs the confirmation of the user it runs for: {reason}")]
    Unconfirmed {
        /// The tool.
        tool: String,
        /// What the user said, or why they could not be asked.
        reason: String,
    },
    /// The arguments are not a JSON object, or do not fit the tool's schema.
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments {
        /// The tool name the model used.
        tool: String,
        /// What is wrong.
        message: String,
    },
}

fn list(roles: &BTreeSet<String>) -> String {
    roles.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl Refusal {
    /// The gate that refused.
    pub fn gate(&self) -> Gate {
        match self {
            Refusal::Killed { .. } => Gate::KillSwitch,
            Refusal::UnknownTool { .. } | Refusal::NotRouted { .. } => Gate::Routing,
            Refusal::Role { .. } => Gate::Role,
            Refusal::RateLimited { .. } => Gate::Rate,
            Refusal::Budget { .. } => Gate::Budget,
            Refusal::InvalidArguments { .. } => Gate::Arguments,
            Refusal::Denied { .. } => Gate::Approval,
            Refusal::Unconfirmed { .. } => Gate::Confirmation,
        }
    }
}

/// A call every gate let through: what to run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Admitted {
    /// `tool.function`.
    pub function: String,
    /// The arguments (a JSON object).
    pub arguments: Value,
    /// The fuel reserved for it, to settle with what it used.
    pub fuel: Option<Reservation>,
    /// Whether a human must approve it first (the tool's `approval` applies).
    pub needs_approval: bool,
    /// Whether the user it is made for must confirm it first (the tool's `confirm` applies).
    #[serde(default)]
    pub needs_confirmation: bool,
}

/// Who a run (or a call) acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Their name.
    pub name: String,
    /// Their roles.
    pub roles: BTreeSet<String>,
}

impl Principal {
    /// The context the sandbox gives each tool call made for them in run `run_id`.
    pub fn call_context(&self, run_id: &str) -> CallContext {
        CallContext {
            roles: self.roles.iter().cloned().collect(),
            ..CallContext::new(&self.name, run_id)
        }
    }
}

/// Checks `call` against every gate, in order. Admission is recorded (`tool.admitted`) in the
/// same transaction as the rate check, so concurrent runs never exceed a rate.
pub fn check(
    host: &Host,
    state: &StateStore,
    config: &Config,
    route: &Route,
    principal: &Principal,
    run_id: &str,
    call: &ToolCall,
) -> Result<Result<Admitted, Refusal>, StateError> {
    let Ok((tool, function)) = host.function(&call.name) else {
        return Ok(Err(Refusal::UnknownTool {
            name: call.name.clone(),
        }));
    };
    let name = &tool.policy.name;
    let gates = config.gates(name);
    let function = format!("{name}.{}", function.name);
    let record = AuditRecord::ToolAdmitted(ToolAdmitted {
        call_id: call.id.clone(),
        tool: name.clone(),
        function: function.clone(),
        principal: principal.name.clone(),
    });
    let rate = gates.rate;
    // One transaction sees the switch, counts the rate and appends the admission, so a switch
    // flipped or a call admitted meanwhile by another process cannot slip between them.
    let admitted = state.append_audit_if(run_id, record, |tx| {
        if let Some(killed) = switches::killed_in(tx, &Target::Tool(name.clone()))? {
            return Ok(Some(Refusal::Killed {
                tool: name.clone(),
                reason: killed.reason,
            }));
        }
        if !route.tools.contains(name) {
            return Ok(Some(Refusal::NotRouted {
                tool: name.clone(),
                route: route.name.clone(),
            }));
        }
        if let Some(needs) = &gates.roles
            && needs.is_disjoint(&principal.roles)
        {
            return Ok(Some(Refusal::Role {
                tool: name.clone(),
                principal: principal.name.clone(),
                needs: needs.clone(),
                has: principal.roles.clone(),
            }));
        }
        let Some(rate) = rate else { return Ok(None) };
        let used = tx
            .query_one(
                "SELECT COUNT(*) FROM audit WHERE kind = 'tool.admitted' AND principal = $2
                 AND tool = $3 AND at > $1",
                params![&since(rate.per), &principal.name, name],
            )?
            .count(0)?;
        Ok((used >= rate.count).then(|| Refusal::RateLimited {
            tool: name.clone(),
            principal: principal.name.clone(),
            rate,
        }))
    })?;
    if let Err(refusal) = admitted {
        return Ok(Err(refusal));
    }
    let fuel = match config.budgets().user_fuel {
        Some(limit) => {
            let budget = Budget {
                scope: format!("fuel:user:{}", principal.name),
                limit,
            };
            match state.reserve(run_id, &[budget], tool.policy.limits.fuel)? {
                Ok(reservation) => Some(reservation),
                Err(exhausted) => {
                    return Ok(Err(Refusal::Budget {
                        tool: name.clone(),
                        exhausted,
                    }));
                }
            }
        }
        None => None,
    };
    match call.arguments() {
        Ok(arguments) => Ok(Ok(Admitted {
            needs_approval: gates
                .approval
                .as_ref()
                .is_some_and(|rule| rule.applies(&arguments)),
            needs_confirmation: gates
                .confirm
                .as_ref()
                .is_some_and(|rule| rule.applies(&arguments)),
            function,
            arguments: Value::Object(arguments),
            fuel,
        })),
        Err(message) => {
            if let Some(reservation) = fuel {
                state.settle(reservation, 0)?;
            }
            Ok(Err(Refusal::InvalidArguments {
                tool: call.name.clone(),
                message,
            }))
        }
    }
}
