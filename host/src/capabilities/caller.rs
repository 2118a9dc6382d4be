//! `harness:tool/caller`: the principal, roles and run id of the current call. Read-only.

use serde::{Deserialize, Serialize};

use super::harness::tool::caller::{Host, Info};
use crate::boundary::CallState;

/// On whose behalf a call runs; given by the front end (agent loop, CLI, server).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    /// Who asked.
    pub principal: String,
    /// The roles granted to the principal.
    pub roles: Vec<String>,
    /// The agent run or CLI invocation this call belongs to.
    pub run_id: String,
}

impl CallContext {
    /// A context for `principal` with no roles, in run `run_id`.
    pub fn new(principal: impl Into<String>, run_id: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            roles: Vec::new(),
            run_id: run_id.into(),
        }
    }
}

impl Host for CallState {
    fn current(&mut self) -> Info {
        Info {
            principal: self.caller.principal.clone(),
            roles: self.caller.roles.clone(),
            run_id: self.caller.run_id.clone(),
        }
    }
}
