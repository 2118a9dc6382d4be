//! `harness:tool/log`: bounded log lines per call, recorded in the call's report and the audit
//! trail.

use serde::Serialize;

use super::harness::tool::log::{Host, Level};
use crate::boundary::CallState;

/// Most lines one call may log; later lines are counted as dropped.
pub const MAX_LINES: usize = 1_000;
/// Most bytes of log text one call may keep.
pub const MAX_BYTES: usize = 64 << 10;
/// Longest single line kept; longer lines are cut.
pub const MAX_LINE: usize = 4 << 10;

/// One line a tool logged.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The text, cut to [`MAX_LINE`] bytes.
    pub message: String,
}

/// The lines of one call, bounded by [`MAX_LINES`] and [`MAX_BYTES`].
#[derive(Debug, Default)]
pub struct LogBuffer {
    /// The lines kept, in order.
    pub lines: Vec<LogLine>,
    /// Lines refused because a bound was reached.
    pub dropped: u64,
    bytes: usize,
}

impl LogBuffer {
    fn push(&mut self, level: Level, mut message: String) {
        if message.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if self.lines.len() >= MAX_LINES || self.bytes + message.len() > MAX_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.lines.push(LogLine { level, message });
    }
}

impl Host for CallState {
    fn write(&mut self, level: Level, message: String) {
        self.log.push(level, message);
    }
}
