//! What a tool can reach, one file per capability, and the linker that offers exactly that.
//!
//! A tool's imports are what it asks for; what is linked here is what every tool gets without a
//! grant. Imports outside [`Capability::is_linked`] are refused when the tool loads.

pub mod caller;
pub mod log;
pub mod stdio;

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::boundary::CallState;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "harness:tool/imports",
});

/// The capability an imported interface belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// `harness:tool/log`: lines into the audit trail.
    Log,
    /// `harness:tool/caller`: who the call is for.
    Caller,
    /// `wasi:clocks`: wall and monotonic time.
    Clocks,
    /// `wasi:random`: randomness.
    Random,
    /// `wasi:cli`: captured stdio, an empty environment, exit.
    Cli,
    /// `wasi:io`: the streams and polling the other interfaces use.
    Io,
    /// `wasi:filesystem`: linked with no directories until a grant adds some.
    Filesystem,
    /// `wasi:sockets`: raw network access.
    Sockets,
    /// `wasi:http`: outgoing HTTP requests.
    Http,
    /// `harness:tool/kv`: key-value storage.
    KeyValue,
    /// Anything the host does not know.
    Unknown,
}

impl Capability {
    /// Classifies an import by its interface name (`wasi:filesystem/types@0.2.6`).
    pub fn of_import(name: &str) -> Self {
        let package = name.split('/').next().unwrap_or(name);
        match package {
            "harness:tool" => match name
                .split('/')
                .nth(1)
                .map(|i| i.split('@').next().unwrap_or(i))
            {
                Some("log") => Self::Log,
                Some("caller") => Self::Caller,
                Some("kv") => Self::KeyValue,
                _ => Self::Unknown,
            },
            "wasi:clocks" => Self::Clocks,
            "wasi:random" => Self::Random,
            "wasi:cli" => Self::Cli,
            "wasi:io" => Self::Io,
            "wasi:filesystem" => Self::Filesystem,
            "wasi:sockets" => Self::Sockets,
            "wasi:http" => Self::Http,
            _ => Self::Unknown,
        }
    }

    /// Whether the host links this capability for every tool today. Filesystem is linked with
    /// no preopened directory, so a tool built with the WASI adapter loads but sees no files.
    pub fn is_linked(self) -> bool {
        matches!(
            self,
            Self::Log
                | Self::Caller
                | Self::Clocks
                | Self::Random
                | Self::Cli
                | Self::Io
                | Self::Filesystem
        )
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Log => "log",
            Self::Caller => "caller",
            Self::Clocks => "clocks",
            Self::Random => "random",
            Self::Cli => "cli (stdio, environment)",
            Self::Io => "io",
            Self::Filesystem => "filesystem",
            Self::Sockets => "sockets",
            Self::Http => "http",
            Self::KeyValue => "key-value",
            Self::Unknown => "unknown",
        })
    }
}

/// The WASI 0.2 versions the linker can satisfy (wasmtime links semver-compatible 0.2.x).
fn is_supported_version(name: &str) -> bool {
    match name.split_once('@') {
        Some((_, version)) if name.starts_with("wasi:") => version.starts_with("0.2."),
        _ => true,
    }
}

/// The imports of a tool that the host will not link, each with its capability.
pub fn unlinked_imports<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    imports
        .into_iter()
        .filter(|name| !(Capability::of_import(name).is_linked() && is_supported_version(name)))
        .map(|name| format!("{name} ({})", Capability::of_import(name)))
        .collect()
}

/// The linker every tool is instantiated with: WASI (no preopens, no network, no environment)
/// plus `harness:tool/log` and `harness:tool/caller`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    harness::tool::log::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;
    harness::tool::caller::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_imports_by_package_and_interface() {
        assert_eq!(
            Capability::of_import("wasi:filesystem/types@0.2.6"),
            Capability::Filesystem
        );
        assert_eq!(
            Capability::of_import("harness:tool/log@0.1.0"),
            Capability::Log
        );
        assert_eq!(
            Capability::of_import("harness:tool/kv@0.1.0"),
            Capability::KeyValue
        );
        assert_eq!(
            Capability::of_import("acme:secrets/vault"),
            Capability::Unknown
        );
    }

    #[test]
    fn lists_what_is_not_linked() {
        let refused = unlinked_imports([
            "wasi:cli/stdout@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:io/streams@0.3.0",
            "acme:secrets/vault",
        ]);
        assert_eq!(
            refused,
            vec![
                "wasi:sockets/tcp@0.2.6 (sockets)",
                "wasi:io/streams@0.3.0 (io)",
                "acme:secrets/vault (unknown)"
            ]
        );
    }
}
