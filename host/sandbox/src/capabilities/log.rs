//! `harness:tool/log`: bounded log lines per call, recorded in the call's report and the audit
//! trail.

use serde::Serialize;
use wasmtime::component::{HasSelf, Linker};

use super::harness::tool::log::{self, Host, Level};

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
pub(crate) struct LogBuffer {
    /// The lines kept, in order.
    pub(crate) lines: Vec<LogLine>,
    /// Lines refused because a bound was reached.
    pub(crate) dropped: u64,
    bytes: usize,
}

/// Store data that keeps a call's log.
pub(crate) trait LogView {
    /// The call's log.
    fn log(&mut self) -> &mut LogBuffer;
}

/// Links `harness:tool/log` to the [`LogBuffer`] of `T`.
pub(crate) fn add_to_linker<T: LogView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    log::add_to_linker::<T, HasSelf<LogBuffer>>(linker, T::log)
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

impl Host for LogBuffer {
    fn write(&mut self, level: Level, message: String) {
        self.push(level, message);
    }
}
