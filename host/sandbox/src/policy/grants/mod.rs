//! What one tool is granted beyond the capabilities every tool has: directories, environment
//! variables, socket addresses, HTTP URLs with their secrets, and key-value storage. Each grant is
//! a value checked when the whitelist loads, so the boundary only ever sees grants that make sense.

mod http;
mod kv;

pub use http::{HttpGrant, HttpLimits, HttpScheme, Origin, Secret, SecretValue};
pub(super) use http::{RawHttp, RawHttpLimits, RawSecret};
pub(super) use kv::RawKv;
pub use kv::{KvGrant, MAX_KEY_BYTES};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything one tool is granted. The default grants nothing: the tool is pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Directories the tool sees, each at a guest path.
    pub fs: Vec<FsGrant>,
    /// The tool's whole environment.
    pub env: BTreeMap<String, String>,
    /// Socket addresses the tool may use, and how.
    pub sockets: Vec<SocketGrant>,
    /// URL prefixes the tool may request over `wasi:http`.
    pub http: Vec<HttpGrant>,
    /// Caps on each call's HTTP exchanges.
    pub http_limits: HttpLimits,
    /// Headers the host injects, by granted origin.
    pub secrets: BTreeMap<Origin, Secret>,
    /// The tool's key-value namespace, when it has one.
    pub kv: Option<KvGrant>,
}

/// A host directory preopened for the tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsGrant {
    /// The directory on the host (absolute, symlinks resolved at load).
    pub host: PathBuf,
    /// Where the tool sees it (an absolute guest path such as `/kb`).
    pub guest: String,
    /// Read-only or read-write.
    pub mode: FsMode,
}

/// What a tool may do inside a granted directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum FsMode {
    /// Read files and list directories; every change is refused.
    #[serde(rename = "ro")]
    ReadOnly,
    /// Also create, write, rename and delete inside the directory.
    #[serde(rename = "rw")]
    ReadWrite,
}

/// One socket address and what the tool may do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketGrant {
    /// The exact address (IP and port); names are not resolved.
    pub addr: SocketAddr,
    /// The uses allowed on it.
    pub uses: Vec<SocketUse>,
}

/// A use of a socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketUse {
    /// Open a TCP connection to the address.
    Connect,
    /// Bind and listen on the address, and accept connections.
    Listen,
    /// Send UDP datagrams to the address and receive them from it.
    Udp,
}

/// The grant keys of a `[tools.NAME]` table, as written.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrants {
    #[serde(default)]
    pub(super) fs: Vec<RawFs>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) sockets: Vec<RawSocket>,
    #[serde(default)]
    pub(super) http: Vec<http::RawHttp>,
    #[serde(default)]
    pub(super) http_limits: http::RawHttpLimits,
    #[serde(default)]
    pub(super) secrets: BTreeMap<String, http::RawSecret>,
    pub(super) kv: Option<kv::RawKv>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFs {
    host: PathBuf,
    guest: String,
    mode: FsMode,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSocket {
    addr: SocketAddr,
    #[serde(rename = "use")]
    uses: Vec<SocketUse>,
}

/// A problem with one grant: the dotted key under the tool's table, and what is wrong.
pub(super) type GrantError = (String, String);

impl RawGrants {
    /// Checks the grants of one tool; relative host paths are relative to `base`, the
    /// whitelist's folder, and secrets are read through `env`.
    pub(super) fn check(
        self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Grants, GrantError> {
        let mut fs = Vec::with_capacity(self.fs.len());
        for (i, raw) in self.fs.into_iter().enumerate() {
            let grant =
                check_fs(raw, base).map_err(|(key, msg)| (format!("fs[{i}].{key}"), msg))?;
            if let Some(other) = fs.iter().position(|g: &FsGrant| g.guest == grant.guest) {
                return Err((
                    format!("fs[{i}].guest"),
                    format!("`{}` is already granted by fs[{other}]", grant.guest),
                ));
            }
            fs.push(grant);
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err((
                    format!("env.{name:?}"),
                    "a variable name must be non-empty, without `=` or NUL".into(),
                ));
            }
            if value.contains('\0') {
                return Err((format!("env.{name}"), "the value contains NUL".into()));
            }
        }
        for (i, socket) in self.sockets.iter().enumerate() {
            if socket.uses.is_empty() {
                return Err((
                    format!("sockets[{i}].use"),
                    "grant at least one of \"connect\", \"listen\", \"udp\"".into(),
                ));
            }
            if socket.addr.port() == 0 {
                return Err((
                    format!("sockets[{i}].addr"),
                    format!("`{}` has port 0; grant the exact port", socket.addr),
                ));
            }
        }
        let http = self
            .http
            .into_iter()
            .enumerate()
            .map(|(i, raw)| http::check_http(raw, i))
            .collect::<Result<Vec<_>, _>>()?;
        let secrets = http::check_secrets(self.secrets, &http, env)?;
        Ok(Grants {
            fs,
            env: self.env,
            http,
            http_limits: self.http_limits.check()?,
            secrets,
            kv: self.kv.map(kv::RawKv::check).transpose()?,
            sockets: self
                .sockets
                .into_iter()
                .map(|s| SocketGrant {
                    addr: s.addr,
                    uses: s.uses,
                })
                .collect(),
        })
    }
}

fn check_fs(raw: RawFs, base: &Path) -> Result<FsGrant, GrantError> {
    let joined = base.join(&raw.host);
    let host = std::fs::canonicalize(&joined)
        .map_err(|e| ("host".to_owned(), format!("`{}`: {e}", joined.display())))?;
    if !host.is_dir() {
        return Err((
            "host".into(),
            format!("`{}` is not a directory", joined.display()),
        ));
    }
    let guest = raw.guest;
    let well_formed = guest.starts_with('/')
        && !guest.contains('\0')
        && guest
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !well_formed && guest != "/" {
        return Err((
            "guest".into(),
            format!(
                "`{guest}` must be an absolute path without `.`, `..` or empty parts, such as `/kb`"
            ),
        ));
    }
    Ok(FsGrant {
        host,
        guest,
        mode: raw.mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, base: &Path) -> Result<Grants, GrantError> {
        toml::from_str::<RawGrants>(toml_text)
            .unwrap()
            .check(base, &|_| None)
    }

    #[test]
    fn directories_resolve_relative_to_the_whitelist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("kb")).unwrap();
        let grants = check(
            r#"fs = [{ host = "./kb", guest = "/kb", mode = "ro" }]"#,
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            grants.fs,
            vec![FsGrant {
                host: dir.path().canonicalize().unwrap().join("kb"),
                guest: "/kb".into(),
                mode: FsMode::ReadOnly
            }]
        );
    }

    #[test]
    fn bad_directories_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("kb")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        for (text, key, says) in [
            (
                r#"fs = [{ host = "missing", guest = "/kb", mode = "ro" }]"#,
                "fs[0].host",
                "missing",
            ),
            (
                r#"fs = [{ host = "file", guest = "/kb", mode = "ro" }]"#,
                "fs[0].host",
                "not a directory",
            ),
            (
                r#"fs = [{ host = "kb", guest = "kb", mode = "ro" }]"#,
                "fs[0].guest",
                "absolute",
            ),
            (
                r#"fs = [{ host = "kb", guest = "/a/../b", mode = "rw" }]"#,
                "fs[0].guest",
                "`..`",
            ),
            (
                r#"fs = [{ host = "kb", guest = "/kb", mode = "ro" }, { host = ".", guest = "/kb", mode = "rw" }]"#,
                "fs[1].guest",
                "already granted by fs[0]",
            ),
            (r#"env = { "A=B" = "x" }"#, "env.\"A=B\"", "without `=`"),
            (
                r#"sockets = [{ addr = "127.0.0.1:0", use = ["connect"] }]"#,
                "sockets[0].addr",
                "port 0",
            ),
            (
                r#"sockets = [{ addr = "127.0.0.1:80", use = [] }]"#,
                "sockets[0].use",
                "at least one",
            ),
        ] {
            let (k, message) = check(text, dir.path()).unwrap_err();
            assert_eq!(k, key, "{text}");
            assert!(message.contains(says), "{text}: {message}");
        }
    }

    #[test]
    fn unknown_modes_and_uses_are_parse_errors() {
        for text in [
            r#"fs = [{ host = ".", guest = "/x", mode = "rx" }]"#,
            r#"sockets = [{ addr = "127.0.0.1:80", use = ["bind"] }]"#,
            r#"sockets = [{ addr = "localhost:80", use = ["connect"] }]"#,
            r#"fs = [{ host = ".", guest = "/x", mode = "ro", follow = true }]"#,
        ] {
            assert!(toml::from_str::<RawGrants>(text).is_err(), "{text}");
        }
    }
}
