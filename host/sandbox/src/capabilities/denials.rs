//! Denied capability use: every attempt a grant did not cover, kept for the call's report; the
//! audit trail records each kept denial with the call ([`crate::audit`]).

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use wasmtime_wasi::{TrappableError, WasiCtxView, WasiView};

use super::Capability;

/// Most denials one call keeps; later ones are only counted.
pub const MAX_DENIALS: usize = 100;

/// One attempt the tool's grants did not allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The capability the attempt used.
    pub capability: Capability,
    /// What was attempted, e.g. `tcp connect 10.0.0.1:5432`.
    pub target: String,
}

/// Store data whose WASI interfaces record what they refuse: the WASI context and the call's
/// denial log, borrowed together.
pub(crate) trait RecordedView: WasiView {
    /// The WASI context and the denial log.
    fn recorded(&mut self) -> (WasiCtxView<'_>, &DenialLog);
}

/// The denials of one call, shared between the store's capability checks and the boundary.
#[derive(Clone, Debug, Default)]
pub struct DenialLog(Arc<Mutex<Log>>);

#[derive(Debug, Default)]
struct Log {
    kept: Vec<Denial>,
    dropped: u64,
}

impl DenialLog {
    /// Records that `target` was refused for `capability`.
    pub fn deny(&self, capability: Capability, target: impl Into<String>) {
        let mut log = self.lock();
        if log.kept.len() < MAX_DENIALS {
            log.kept.push(Denial {
                capability,
                target: target.into(),
            });
        } else {
            log.dropped += 1;
        }
    }

    /// Passes `result` on; when its error code is one `refused` accepts, records
    /// `target(code)` as a denial of `capability`. The wrappers over wasmtime-wasi's interfaces
    /// share this.
    pub fn record<T, E>(
        &self,
        result: Result<T, TrappableError<E>>,
        capability: Capability,
        refused: impl FnOnce(&E) -> bool,
        target: impl FnOnce(&E) -> String,
    ) -> Result<T, TrappableError<E>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Err(e) = &result
            && let Some(code) = e.downcast_ref().filter(|code| refused(code))
        {
            self.deny(capability, target(code));
        }
        result
    }

    /// The denials kept, and how many more there were.
    pub fn take(&self) -> (Vec<Denial>, u64) {
        let mut log = self.lock();
        (std::mem::take(&mut log.kept), log.dropped)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
