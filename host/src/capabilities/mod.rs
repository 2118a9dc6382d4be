//! What a tool can reach, one file per capability, and the linker that offers exactly that.
//!
//! A tool's imports are what it asks for; what is linked here is what every tool gets without a
//! grant. Imports outside [`Capability::is_linked`] are refused when the tool loads.

pub mod caller;
pub mod denials;
pub mod filesystem;
pub mod log;
pub mod sockets;
pub mod stdio;

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::boundary::CallState;
use crate::policy::Grants;
use denials::DenialLog;
use stdio::Capture;

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

    /// Whether the host links this capability for every tool. Grantable capabilities
    /// (filesystem, sockets) are linked denying every use the tool's grants do not cover, so a
    /// tool built with the WASI adapter loads and runs without them.
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
                | Self::Sockets
        )
    }

    /// Whether a tool gets this capability only through a grant (so `strict` refuses a tool
    /// that imports it without one).
    pub fn is_grantable(self) -> bool {
        matches!(self, Self::Filesystem | Self::Sockets)
    }

    /// Whether `grants` give the tool anything of this capability.
    pub fn is_granted(self, grants: &Grants) -> bool {
        match self {
            Self::Filesystem => !grants.fs.is_empty(),
            Self::Sockets => !grants.sockets.is_empty(),
            _ => !self.is_grantable(),
        }
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

/// The grant keys of `grants` that give the tool something it does not import (`fs`, `env`,
/// `sockets`): an over-grant, refused at load.
pub fn unused_grants<'a>(
    grants: &Grants,
    imports: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<&'static str> {
    let imports_any = |prefix: &str| imports.clone().into_iter().any(|i| i.starts_with(prefix));
    let mut unused = Vec::new();
    if !grants.fs.is_empty() && !imports_any("wasi:filesystem/") {
        unused.push("fs");
    }
    if !grants.env.is_empty() && !imports_any("wasi:cli/environment") {
        unused.push("env");
    }
    if !grants.sockets.is_empty() && !imports_any("wasi:sockets/") {
        unused.push("sockets");
    }
    unused
}

/// The imports of grantable capabilities that `grants` give nothing of: linked but denied, or
/// refused at load when the tool is `strict`.
pub fn ungranted_imports<'a>(
    grants: &Grants,
    imports: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    imports
        .into_iter()
        .filter(|name| {
            let capability = Capability::of_import(name);
            capability.is_grantable() && !capability.is_granted(grants)
        })
        .map(|name| format!("{name} ({})", Capability::of_import(name)))
        .collect()
}

/// The WASI context of one call: captured stdio, and exactly the directories, environment and
/// socket addresses of `grants`. Denied socket use is recorded in `denials`.
pub fn wasi_ctx(
    grants: &Grants,
    stdout: &Capture,
    stderr: &Capture,
    denials: &DenialLog,
) -> Result<WasiCtx, filesystem::PreopenError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone()).stderr(stderr.clone());
    for (name, value) in &grants.env {
        wasi.env(name, value);
    }
    filesystem::grant(&mut wasi, &grants.fs)?;
    sockets::grant(&mut wasi, &grants.sockets, denials);
    Ok(wasi.build())
}

/// The linker every tool is instantiated with: WASI, whose per-call context ([`wasi_ctx`])
/// decides what is reachable, plus `harness:tool/log` and `harness:tool/caller`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    sockets::add_to_linker(&mut linker)?;
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
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:io/streams@0.3.0",
            "acme:secrets/vault",
        ]);
        assert_eq!(
            refused,
            vec![
                "wasi:http/outgoing-handler@0.2.6 (http)",
                "wasi:io/streams@0.3.0 (io)",
                "acme:secrets/vault (unknown)"
            ]
        );
    }
}
