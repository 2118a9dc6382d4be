//! What a tool can reach, one file per capability, and the linker that offers exactly that.
//!
//! A tool's imports are what it asks for; what is linked here is what every tool gets without a
//! grant. Imports outside [`Capability::is_linked`] are refused when the tool loads. Each
//! capability reaches its part of a call's store data through its own view trait (as
//! wasmtime-wasi's `WasiView` does), so it depends on nothing but that part and can be linked
//! and tested alone; [`CallView`] is all of them together.

pub mod caller;
pub mod denials;
pub mod filesystem;
pub mod http;
pub mod kv;
pub mod log;
pub mod sockets;
pub mod stdio;

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpView;

use crate::policy::Grants;
use caller::CallerView;
use denials::{DenialLog, RecordedView};
use kv::KvView;
use log::LogView;
use stdio::Capture;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "harness:tool/imports",
});

/// The capability an imported interface belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// An interface of the tool's own that carries types only (a world's `use types.{item}`):
    /// nothing to provide.
    TypesOnly,
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
    /// (filesystem, sockets, http, key-value) are linked denying every use the tool's grants do not cover,
    /// so a tool built with the WASI adapter loads and runs without them.
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
                | Self::Http
                | Self::KeyValue
                | Self::TypesOnly
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
            Self::TypesOnly => "types only",
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

/// The imports of a tool (with their capabilities) that the host will not link, each named with
/// its capability.
pub fn unlinked_imports(imports: &[(String, Capability)]) -> Vec<String> {
    imports
        .iter()
        .filter(|(name, capability)| !(capability.is_linked() && is_supported_version(name)))
        .map(|(name, capability)| format!("{name} ({capability})"))
        .collect()
}

/// A grant key of the whitelist, and the imports it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantKey {
    /// `fs`: `wasi:filesystem`.
    Fs,
    /// `env`: `wasi:cli/environment`.
    Env,
    /// `sockets`: `wasi:sockets`.
    Sockets,
    /// `http` (with its `secrets`): `wasi:http`.
    Http,
    /// `kv`: `harness:tool/kv`.
    Kv,
}

impl GrantKey {
    /// Every grant key, in whitelist order.
    pub const ALL: [GrantKey; 5] = [
        GrantKey::Fs,
        GrantKey::Env,
        GrantKey::Sockets,
        GrantKey::Http,
        GrantKey::Kv,
    ];

    /// The key as written in a `[tools.NAME]` table.
    pub fn key(self) -> &'static str {
        match self {
            GrantKey::Fs => "fs",
            GrantKey::Env => "env",
            GrantKey::Sockets => "sockets",
            GrantKey::Http => "http",
            GrantKey::Kv => "kv",
        }
    }

    /// The capability the key grants.
    pub fn capability(self) -> Capability {
        match self {
            GrantKey::Fs => Capability::Filesystem,
            GrantKey::Env => Capability::Cli,
            GrantKey::Sockets => Capability::Sockets,
            GrantKey::Http => Capability::Http,
            GrantKey::Kv => Capability::KeyValue,
        }
    }

    fn covers(self, import: &str) -> bool {
        let unversioned = import.split('@').next().unwrap_or(import);
        match self {
            GrantKey::Fs => unversioned.starts_with("wasi:filesystem/"),
            GrantKey::Env => unversioned == "wasi:cli/environment",
            GrantKey::Sockets => unversioned.starts_with("wasi:sockets/"),
            GrantKey::Http => unversioned.starts_with("wasi:http/"),
            GrantKey::Kv => unversioned == "harness:tool/kv",
        }
    }

    fn is_granted(self, grants: &Grants) -> bool {
        match self {
            GrantKey::Fs => !grants.fs.is_empty(),
            GrantKey::Env => !grants.env.is_empty(),
            GrantKey::Sockets => !grants.sockets.is_empty(),
            GrantKey::Http => !grants.http.is_empty(),
            GrantKey::Kv => grants.kv.is_some(),
        }
    }

    /// Whether importing without a grant matters. An empty environment does not: wasi-libc
    /// imports `wasi:cli/environment` in every tool.
    fn needs_grant(self) -> bool {
        self != GrantKey::Env
    }
}

/// How one grant key of a tool compares with what its component imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantMatch {
    /// The grant key.
    pub key: GrantKey,
    /// The imports it covers.
    pub imports: Vec<String>,
    /// Whether the whitelist grants anything under the key.
    pub granted: bool,
}

impl GrantMatch {
    /// Granted, but nothing imports it: an over-grant, refused at load.
    pub fn is_over_grant(&self) -> bool {
        self.granted && self.imports.is_empty()
    }

    /// Imported without a grant: linked and denied at each use, or refused at load when the
    /// tool is `strict`.
    pub fn is_ungranted(&self) -> bool {
        !self.granted && !self.imports.is_empty() && self.key.needs_grant()
    }
}

/// Compares `grants` with `imports`, one entry per [`GrantKey`]: the single place that decides
/// over-grants and ungranted imports, for loading and for `harness audit`.
pub fn match_grants<'a>(
    grants: &Grants,
    imports: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<GrantMatch> {
    GrantKey::ALL
        .into_iter()
        .map(|key| GrantMatch {
            key,
            imports: imports
                .clone()
                .into_iter()
                .filter(|i| key.covers(i))
                .map(str::to_owned)
                .collect(),
            granted: key.is_granted(grants),
        })
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

/// The store data of a call, as every capability sees it.
pub(crate) trait CallView:
    RecordedView + WasiHttpView + LogView + CallerView + KvView + 'static
{
}

impl<T: RecordedView + WasiHttpView + LogView + CallerView + KvView + 'static> CallView for T {}

/// The linker every tool is instantiated with: WASI, `wasi:http` and `harness:tool/kv`, whose
/// per-call state ([`wasi_ctx`], [`http::HttpHooks`], [`kv::KvCtx`]) decides what is reachable,
/// plus `harness:tool/log` and `harness:tool/caller`.
pub(crate) fn linker<T: CallView>(engine: &Engine) -> wasmtime::Result<Linker<T>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    filesystem::add_to_linker(&mut linker)?;
    sockets::add_to_linker(&mut linker)?;
    http::add_to_linker(&mut linker)?;
    log::add_to_linker(&mut linker)?;
    caller::add_to_linker(&mut linker)?;
    kv::add_to_linker(&mut linker)?;
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
    fn grants_are_matched_with_imports() {
        let grants = Grants {
            env: [("LANG".to_owned(), "C".to_owned())].into(),
            ..Grants::default()
        };
        let matches = match_grants(
            &grants,
            [
                "wasi:filesystem/types@0.2.6",
                "wasi:filesystem/preopens@0.2.6",
                "wasi:cli/stdout@0.2.6",
            ],
        );
        let fs = &matches[0];
        assert_eq!(fs.key, GrantKey::Fs);
        assert_eq!(
            fs.imports,
            [
                "wasi:filesystem/types@0.2.6",
                "wasi:filesystem/preopens@0.2.6"
            ]
        );
        assert!(fs.is_ungranted() && !fs.is_over_grant());
        let env = &matches[1];
        assert!(
            env.is_over_grant(),
            "env granted, wasi:cli/environment not imported"
        );
        let sockets = &matches[2];
        assert!(!sockets.is_ungranted() && !sockets.is_over_grant());

        let without_env = match_grants(&Grants::default(), ["wasi:cli/environment"]);
        assert!(
            !without_env[1].is_ungranted(),
            "an empty environment needs no grant"
        );
    }

    #[test]
    fn lists_what_is_not_linked() {
        let classified: Vec<(String, Capability)> = [
            "wasi:cli/stdout@0.2.6",
            "wasi:http/outgoing-handler@0.2.6",
            "harness:tool/kv@0.1.0",
            "harness:tool/secrets@0.1.0",
            "wasi:io/streams@0.3.0",
            "acme:secrets/vault",
        ]
        .into_iter()
        .map(|name| (name.to_owned(), Capability::of_import(name)))
        .chain([("acme:tool/types".to_owned(), Capability::TypesOnly)])
        .collect();
        let refused = unlinked_imports(&classified);
        assert_eq!(
            refused,
            vec![
                "harness:tool/secrets@0.1.0 (unknown)",
                "wasi:io/streams@0.3.0 (io)",
                "acme:secrets/vault (unknown)"
            ]
        );
    }
}
