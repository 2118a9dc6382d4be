//! One record per call attempt, as a structured `tracing` event on target `harness::audit`.
//! The agent keeps its own durable, hash-chained log of runs on top.

use crate::boundary::CallReport;
use crate::capabilities::caller::CallContext;
use crate::digest::Sha256Digest;

/// The tracing target of audit records.
pub const TARGET: &str = "harness::audit";

/// What a record says about one call attempt.
pub struct CallRecord<'a> {
    /// Tool name, or the name that was asked for when it is unknown.
    pub tool: &'a str,
    /// Function name within the tool.
    pub function: &'a str,
    /// The component's digest, when the tool is known.
    pub digest: Option<&'a Sha256Digest>,
    /// On whose behalf.
    pub caller: &'a CallContext,
    /// SHA-256 of the JSON arguments as received.
    pub args_sha256: &'a Sha256Digest,
}

impl CallRecord<'_> {
    /// Records a call that ran, with its outcome and usage, and each capability use it was
    /// denied.
    pub fn ran(&self, report: &CallReport) {
        tracing::info!(
            target: TARGET,
            tool = self.tool,
            function = self.function,
            digest = self.digest.map(ToString::to_string),
            principal = %self.caller.principal,
            run_id = %self.caller.run_id,
            args_sha256 = %self.args_sha256,
            outcome = report.outcome.kind(),
            fuel = report.usage.fuel,
            wall_us = u64::try_from(report.usage.wall.as_micros()).unwrap_or(u64::MAX),
            peak_memory = report.usage.peak_memory,
            output_bytes = report.usage.output_bytes,
            log_lines = report.logs.len(),
            denials = report.denials.len() as u64 + report.denials_dropped,
            "tool call"
        );
        for denial in &report.denials {
            tracing::info!(
                target: TARGET,
                tool = self.tool,
                function = self.function,
                principal = %self.caller.principal,
                run_id = %self.caller.run_id,
                capability = %denial.capability,
                denied = %denial.target,
                "capability use denied"
            );
        }
    }

    /// Records a call refused before it ran (unknown tool or function, bad arguments).
    pub fn refused(&self, kind: &'static str, reason: &str) {
        tracing::info!(
            target: TARGET,
            tool = self.tool,
            function = self.function,
            digest = self.digest.map(ToString::to_string),
            principal = %self.caller.principal,
            run_id = %self.caller.run_id,
            args_sha256 = %self.args_sha256,
            outcome = kind,
            reason,
            "tool call refused"
        );
    }
}
