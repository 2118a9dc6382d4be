//! Lines for the host's audit trail (`harness:tool/log`), bounded per call by the host.

use crate::bindings::harness::tool::log::{Level, write};

/// Records a debug line.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message.as_ref());
}

/// Records an informational line.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message.as_ref());
}

/// Records a warning.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message.as_ref());
}

/// Records an error line (the call's outcome is still what the function returns).
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message.as_ref());
}
