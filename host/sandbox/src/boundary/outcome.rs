//! What one call produced: a typed outcome plus what it used.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::capabilities::denials::Denial;
use crate::capabilities::log::LogLine;
use crate::capabilities::stdio::StreamName;

/// How a call ended. Every way a tool can fail is one of these; the host never panics.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The function returned; `value` is its JSON result.
    Ok { value: Value },
    /// The function returned the `err` of its `result`.
    ToolError { error: Value },
    /// The host stopped the call.
    Stopped { stop: Stop },
}

impl Outcome {
    /// A short stable name: `ok`, `tool_error`, or the stop's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::ToolError { .. } => "tool_error",
            Outcome::Stopped { stop } => stop.kind(),
        }
    }
}

/// Why the host stopped a call.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stop {
    /// The fuel budget ran out (roughly: too many instructions).
    #[error("out of fuel: the call used its budget of {limit} fuel")]
    OutOfFuel { limit: u64 },
    /// The wall-clock deadline passed.
    #[error("timed out after {}", humantime::format_duration(*limit))]
    TimedOut { limit: Duration },
    /// Linear memory would have grown past the cap.
    #[error("memory limit of {} reached", bytesize::ByteSize(*limit).display().iec())]
    MemoryLimit { limit: u64 },
    /// The wasm stack was exhausted (deep or unbounded recursion).
    #[error("stack overflow")]
    StackOverflow,
    /// The result, or stdout/stderr, passed its size bound.
    #[error("output too large: {what} passed the limit of {}", bytesize::ByteSize(*limit).display().iec())]
    OutputTooLarge { what: OutputKind, limit: u64 },
    /// The tool trapped (unreachable, out-of-bounds access, a failed host call, ...).
    #[error("the tool crashed: {message}")]
    Trap { message: String },
    /// The host could not set up something the tool is granted (e.g. a granted directory was
    /// removed); the tool did not run.
    #[error("a granted capability is unavailable: {message}")]
    GrantUnavailable { message: String },
}

impl Stop {
    /// A short stable name for logs and exit codes.
    pub fn kind(&self) -> &'static str {
        match self {
            Stop::OutOfFuel { .. } => "out_of_fuel",
            Stop::TimedOut { .. } => "timed_out",
            Stop::MemoryLimit { .. } => "memory_limit",
            Stop::StackOverflow => "stack_overflow",
            Stop::OutputTooLarge { .. } => "output_too_large",
            Stop::Trap { .. } => "trap",
            Stop::GrantUnavailable { .. } => "grant_unavailable",
        }
    }
}

/// Which output passed its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// The function's return value.
    Result,
    /// A captured stream.
    Stream(StreamName),
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputKind::Result => "the result",
            OutputKind::Stream(StreamName::Stdout) => "stdout",
            OutputKind::Stream(StreamName::Stderr) => "stderr",
        })
    }
}

/// What a call used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Usage {
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time from instantiation to result (waiting for a free slot excluded).
    #[serde(with = "micros")]
    pub wall: Duration,
    /// Highest total linear memory, in bytes.
    pub peak_memory: u64,
    /// Size of the JSON result (or tool error), in bytes.
    pub output_bytes: usize,
}

/// The full report of one call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallReport {
    /// How it ended.
    pub outcome: Outcome,
    /// What it used.
    pub usage: Usage,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// Lines logged through `harness:tool/log`.
    pub logs: Vec<LogLine>,
    /// Log lines dropped because the per-call bound was reached.
    pub logs_dropped: u64,
    /// Capability uses the tool's grants did not allow (each also an audit event).
    pub denials: Vec<Denial>,
    /// Denials beyond the per-call bound, counted only.
    pub denials_dropped: u64,
}

impl CallReport {
    /// The report of a call the host stopped before the tool ran.
    pub(crate) fn not_run(stop: Stop) -> Self {
        Self {
            outcome: Outcome::Stopped { stop },
            usage: Usage {
                fuel: 0,
                wall: Duration::ZERO,
                peak_memory: 0,
                output_bytes: 0,
            },
            stdout: String::new(),
            stderr: String::new(),
            logs: Vec::new(),
            logs_dropped: 0,
            denials: Vec::new(),
            denials_dropped: 0,
        }
    }
}

mod micros {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}
