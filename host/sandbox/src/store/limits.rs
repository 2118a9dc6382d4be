//! The memory and table caps of one call, and the peak memory it reached.

use wasmtime::ResourceLimiter;

use crate::engine::MAX_TABLE_ELEMENTS;

/// Raised when a call's linear memories would grow past its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (wanted {wanted} bytes)")]
pub struct MemoryLimitExceeded {
    /// The cap.
    pub limit: u64,
    /// The total the call asked for.
    pub wanted: u64,
}

/// Caps the total linear memory of one call (across all the component's memories) and records
/// its peak. Growing past the cap stops the call, so the outcome names the limit.
#[derive(Debug)]
pub struct CallLimiter {
    limit: u64,
    current: u64,
    /// Highest total linear memory seen.
    pub peak: u64,
    /// Whether the cap was hit.
    pub exceeded: bool,
}

impl CallLimiter {
    /// A limiter allowing `limit` bytes in total.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            current: 0,
            peak: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = (self.current + desired as u64).saturating_sub(current as u64);
        if wanted > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                wanted,
            }));
        }
        self.current = wanted;
        self.peak = self.peak.max(wanted);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
