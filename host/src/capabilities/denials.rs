//! Denied capability use: every attempt a grant did not cover, kept for the call's report and
//! the audit trail.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::Capability;
use super::caller::CallContext;

/// Most denials one call keeps; later ones are only counted.
pub const MAX_DENIALS: usize = 100;

/// One attempt the tool's grants did not allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The capability the attempt used.
    pub capability: Capability,
    /// What was attempted, e.g. `tcp connect 10.0.0.1:5432`.
    pub target: String,
}

/// The denials of one call, shared between the store's capability checks and the boundary.
#[derive(Clone, Debug)]
pub struct DenialLog(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    tool: String,
    caller: CallContext,
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    kept: Vec<Denial>,
    dropped: u64,
}

impl DenialLog {
    /// An empty log for one call of `tool` on behalf of `caller`.
    pub fn new(tool: &str, caller: &CallContext) -> Self {
        Self(Arc::new(Inner {
            tool: tool.to_owned(),
            caller: caller.clone(),
            log: Mutex::default(),
        }))
    }

    /// Records that `target` was refused for `capability`.
    pub fn deny(&self, capability: Capability, target: impl Into<String>) {
        let denial = Denial {
            capability,
            target: target.into(),
        };
        tracing::info!(
            target: crate::audit::TARGET,
            tool = self.0.tool,
            principal = %self.0.caller.principal,
            run_id = %self.0.caller.run_id,
            capability = %denial.capability,
            denied = %denial.target,
            "capability use denied"
        );
        let mut log = self.lock();
        if log.kept.len() < MAX_DENIALS {
            log.kept.push(denial);
        } else {
            log.dropped += 1;
        }
    }

    /// The denials kept, and how many more there were.
    pub fn take(&self) -> (Vec<Denial>, u64) {
        let mut log = self.lock();
        (std::mem::take(&mut log.kept), log.dropped)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}
