//! `harness:tool/caller`: the principal, roles and run id of the current call. Read-only.

use serde::{Deserialize, Serialize};
use wasmtime::component::{HasSelf, Linker};

use super::harness::tool::caller::{self, Host, Info};

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

/// Store data that knows whom the call is for.
pub(crate) trait CallerView {
    /// The call's context.
    fn caller(&mut self) -> &mut CallContext;
}

/// Links `harness:tool/caller` to the [`CallContext`] of `T`.
pub(crate) fn add_to_linker<T: CallerView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    caller::add_to_linker::<T, HasSelf<CallContext>>(linker, T::caller)
}

impl Host for CallContext {
    fn current(&mut self) -> Info {
        Info {
            principal: self.principal.clone(),
            roles: self.roles.clone(),
            run_id: self.run_id.clone(),
        }
    }
}
