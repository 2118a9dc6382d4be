//! The whitelist: one TOML file, owned by the platform team, that is the only way a tool becomes
//! callable.
//!
//! Parsing is strict: unknown keys, bad units, missing files, malformed digests and bad tool names
//! are errors that name the file, the tool and the key. Nothing half-loads: [`Policy::load`]
//! either returns a complete policy or an error. Layers above the sandbox (the agent) read
//! their own tables from the same file through an [`Extension`], in the same single pass.

mod extension;
mod grants;
mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use extension::{Extension, ExtraKeys};
pub use grants::{
    FsGrant, FsMode, Grants, HttpGrant, HttpLimits, HttpScheme, KvGrant, MAX_KEY_BYTES, Origin,
    Secret, SecretValue, SocketGrant, SocketUse,
};
pub use units::{Bytes, Timeout};

use crate::digest::Sha256Digest;
use crate::oci::OciSource;
use crate::signing::{Statement, Trust};

/// Where the host looks for the whitelist when no `--policy` is given.
pub const DEFAULT_POLICY_FILE: &str = "harness.toml";

/// The environment variable that names the shared PostgreSQL database, over `[host] state`
/// (so a password need not be written in the whitelist).
pub const DATABASE_URL_VAR: &str = "HARNESS_DATABASE_URL";

/// A loaded, validated whitelist: the host's settings and the tools. Only [`Policy::load`] and
/// its siblings make one, so every policy a [`Host`](crate::Host) sees was checked.
#[derive(Clone, Debug)]
pub struct Policy {
    path: PathBuf,
    host: HostSettings,
    trust: Trust,
    tools: BTreeMap<String, ToolPolicy>,
}

/// Settings of the host process, from the `[host]` table.
#[derive(Clone, Debug)]
pub struct HostSettings {
    cache_dir: PathBuf,
    data_dir: PathBuf,
    database: Option<harness_db::Target>,
    max_concurrency: u32,
}

impl HostSettings {
    /// Where compiled components are cached. Only the host writes there.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Where durable state lives (the tools' key-value store, the agent's state).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the store kept in `file` under the data directory lives: that SQLite file, or the
    /// PostgreSQL database that `[host] state` (or `HARNESS_DATABASE_URL`) names, shared by
    /// every replica.
    pub fn database(&self, file: &str) -> harness_db::Target {
        self.database
            .clone()
            .unwrap_or_else(|| harness_db::Target::sqlite(self.data_dir.join(file)))
    }

    /// How many calls may run at once (1 to 4096); further calls wait for a slot.
    pub fn max_concurrency(&self) -> u32 {
        self.max_concurrency
    }
}

/// One whitelisted tool.
#[derive(Clone, Debug)]
pub struct ToolPolicy {
    /// The tool's name: the prefix of its functions (`calc.add`).
    pub name: String,
    /// The component file (absolute): as written, or where the cache keeps the pull of
    /// [`registry`](Self::registry).
    pub component: PathBuf,
    /// The registry the component is pulled from when the cache does not hold it yet.
    pub registry: Option<OciSource>,
    /// The digest the component must have; any other file is refused.
    pub sha256: Sha256Digest,
    /// The limits of each call to this tool.
    pub limits: Limits,
    /// What it may reach beyond the capabilities every tool has.
    pub grants: Grants,
    /// Whether importing an ungranted capability refuses the tool at load (instead of linking
    /// an implementation that denies each use).
    pub strict: bool,
    /// Its signature: where it is, whether it is required, and what it must cover.
    pub signing: Signing,
}

/// How a tool is signed: a reviewer's signature over [`Statement`] (digest and entry).
#[derive(Clone, Debug)]
pub struct Signing {
    /// Whether the tool is refused without a valid signature (`require_signatures`).
    pub required: bool,
    /// The signature file: `signature`, else beside the component (`NAME.wasm.sig`), else, for a
    /// registry component, the signature pulled with it.
    pub file: PathBuf,
    /// Whether `file` is where the signature pulled from the registry is kept (a registry
    /// component without a `signature` key).
    pub from_registry: bool,
    /// What a valid signature must cover.
    pub statement: Statement,
}

/// The limits of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wasm fuel: roughly, instructions executed.
    pub fuel: u64,
    /// Total linear memory across the component's memories.
    pub memory: Bytes,
    /// Wall-clock deadline.
    pub timeout: Duration,
    /// Largest JSON result, and largest capture of stdout and of stderr.
    pub max_output: Bytes,
    /// Largest JSON arguments accepted.
    pub max_input: Bytes,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 200_000_000,
            memory: Bytes(64 << 20),
            timeout: Duration::from_secs(5),
            max_output: Bytes(256 << 10),
            max_input: Bytes(1 << 20),
        }
    }
}

/// What is wrong with a whitelist file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the whitelist {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong kind.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is well-formed but not acceptable.
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// A tool's component file does not exist.
    #[error("{path}: tools.{tool}.component: `{component}` does not exist")]
    MissingComponent {
        path: PathBuf,
        tool: String,
        component: PathBuf,
    },
}

/// The sandbox's part of the file, with each tool's extension keys (`T`) beside its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: ExtraKeys"))]
struct RawPolicy<T> {
    #[serde(default)]
    host: RawHost,
    #[serde(default)]
    defaults: RawLimits,
    #[serde(default)]
    trust: RawTrust,
    #[serde(default = "BTreeMap::new")]
    tools: BTreeMap<String, extension::WithExtra<RawTool, T>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHost {
    cache_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    state: Option<String>,
    max_concurrency: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    #[serde(default)]
    keys: BTreeMap<String, String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    strict: Option<bool>,
    require_signatures: Option<bool>,
    fuel: Option<u64>,
    memory: Option<Bytes>,
    timeout: Option<Timeout>,
    max_output: Option<Bytes>,
    max_input: Option<Bytes>,
}

/// A `[tools.NAME]` table as written. Its limit and grant keys are spelled out here instead of
/// flattened from `RawLimits` and `RawGrants`: serde's `flatten` ignores `deny_unknown_fields`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    component: String,
    sha256: Sha256Digest,
    signature: Option<PathBuf>,
    require_signatures: Option<bool>,
    fuel: Option<u64>,
    memory: Option<Bytes>,
    timeout: Option<Timeout>,
    max_output: Option<Bytes>,
    max_input: Option<Bytes>,
    strict: Option<bool>,
    #[serde(default)]
    fs: Vec<grants::RawFs>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    sockets: Vec<grants::RawSocket>,
    #[serde(default)]
    http: Vec<grants::RawHttp>,
    #[serde(default)]
    http_limits: grants::RawHttpLimits,
    #[serde(default)]
    secrets: BTreeMap<String, grants::RawSecret>,
    kv: Option<grants::RawKv>,
}

impl RawTool {
    fn limits(&self) -> RawLimits {
        RawLimits {
            strict: self.strict,
            require_signatures: self.require_signatures,
            fuel: self.fuel,
            memory: self.memory,
            timeout: self.timeout,
            max_output: self.max_output,
            max_input: self.max_input,
        }
    }
}

impl RawLimits {
    fn over(self, base: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory: self.memory.unwrap_or(base.memory),
            timeout: self.timeout.map_or(base.timeout, |t| t.0),
            max_output: self.max_output.unwrap_or(base.max_output),
            max_input: self.max_input.unwrap_or(base.max_input),
        }
    }
}

impl Policy {
    /// Reads and validates the whitelist at `path`. Relative paths inside it are relative to
    /// the file's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        Self::parse(&text, &path)
    }

    /// Validates whitelist `text` as if it had been read from `path`, reading secrets from the
    /// process environment.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PolicyError> {
        Self::parse_with_env(text, path, &|name| std::env::var(name).ok())
    }

    /// Validates whitelist `text` as if it had been read from `path`, reading each secret's
    /// `value_from_env` through `env` (embedders with their own secret store pass it here).
    pub fn parse_with_env(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, PolicyError> {
        Self::parse_extended::<()>(text, path, env).map(|(policy, ())| policy)
    }

    /// Reads and validates the whitelist at `path` together with extension `E`'s tables and
    /// tool keys, reading secrets from the process environment.
    pub fn load_extended<E: Extension>(
        path: impl AsRef<Path>,
    ) -> Result<(Self, E::Checked), PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        Self::parse_extended::<E>(&text, &path, &|name| std::env::var(name).ok())
    }

    /// Validates whitelist `text` (read from `path`) together with extension `E`: one pass over
    /// the file, in which every key belongs to the sandbox or to `E`, and any other key is an
    /// error naming it. The sandbox's part is checked first, then `E`'s against it.
    pub fn parse_extended<E: Extension>(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Self, E::Checked), PolicyError> {
        let raw: extension::WithExtra<RawPolicy<E::Tool>, E> =
            toml::from_str(text).map_err(|e| PolicyError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let invalid = |key: String, message: String| PolicyError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        // The tables as written, for what signatures cover; the text parsed above, so it parses.
        let written: toml::Table = toml::from_str(text).unwrap_or_default();
        let (policy, tool_extras) = Self::check(raw.known, &written, path, env)?;
        let checked = raw
            .extra
            .check(tool_extras, &policy)
            .map_err(|(key, message)| invalid(key, message))?;
        Ok((policy, checked))
    }

    /// Checks the sandbox's part; returns it with each tool's extension keys.
    fn check<T>(
        raw: RawPolicy<T>,
        written: &toml::Table,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Self, BTreeMap<String, T>), PolicyError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |key: String, message: String| PolicyError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };

        let max_concurrency = raw.host.max_concurrency.unwrap_or(32);
        if !(1..=4096).contains(&max_concurrency) {
            return Err(invalid(
                "host.max_concurrency".into(),
                format!("{max_concurrency} is out of range; use 1 to 4096"),
            ));
        }
        let cache_dir = match raw.host.cache_dir {
            Some(dir) => base.join(dir),
            None => CACHE_DIR.resolve(base),
        };
        let data_dir = match raw.host.data_dir {
            Some(dir) => base.join(dir),
            None => DATA_DIR.resolve(base),
        };
        let database = match std::env::var(DATABASE_URL_VAR) {
            Ok(url) => Some(
                harness_db::Target::postgres(&url)
                    .map_err(|msg| invalid(DATABASE_URL_VAR.into(), msg))?,
            ),
            Err(_) => raw
                .host
                .state
                .map(|url| {
                    harness_db::Target::postgres(&url)
                        .map_err(|msg| invalid("host.state".into(), msg))
                })
                .transpose()?,
        };
        let trust = Trust::from_keys(raw.trust.keys)
            .map_err(|bad| invalid(format!("trust.keys.{}", bad.name), bad.message))?;
        let defaults = raw.defaults.over(Limits::default());
        check_limits(&defaults, "defaults").map_err(|(key, msg)| invalid(key, msg))?;

        let mut tools = BTreeMap::new();
        let mut extras = BTreeMap::new();
        for (name, table) in raw.tools {
            let tool = table.known;
            check_tool_name(&name).map_err(|msg| invalid(format!("tools.{name}"), msg))?;
            let limits = tool.limits().over(defaults);
            check_limits(&limits, &format!("tools.{name}"))
                .map_err(|(key, msg)| invalid(key, msg))?;
            let strict = tool.strict.or(raw.defaults.strict).unwrap_or(false);
            let grants = grants::RawGrants {
                fs: tool.fs,
                env: tool.env,
                sockets: tool.sockets,
                http: tool.http,
                http_limits: tool.http_limits,
                secrets: tool.secrets,
                kv: tool.kv,
            }
            .check(base, env)
            .map_err(|(key, msg)| invalid(format!("tools.{name}.{key}"), msg))?;
            let (component, registry) = if tool.component.starts_with("oci://") {
                let source = OciSource::parse(&tool.component)
                    .map_err(|msg| invalid(format!("tools.{name}.component"), msg))?;
                let cached = crate::oci::cached_component(&cache_dir, &tool.sha256);
                (cached, Some(source))
            } else {
                let component = base.join(&tool.component);
                if !component.is_file() {
                    return Err(PolicyError::MissingComponent {
                        path: path.to_owned(),
                        tool: name,
                        component,
                    });
                }
                (component, None)
            };
            let signature_file = match (&tool.signature, &registry) {
                (Some(file), _) => base.join(file),
                (None, Some(_)) => crate::oci::cached_signature(&cache_dir, &tool.sha256),
                (None, None) => {
                    let mut file = component.clone().into_os_string();
                    file.push(".sig");
                    file.into()
                }
            };
            let written_table = written
                .get("tools")
                .and_then(|tools| tools.get(&name))
                .and_then(toml::Value::as_table)
                .cloned()
                .unwrap_or_default();
            let signing = Signing {
                required: tool
                    .require_signatures
                    .or(raw.defaults.require_signatures)
                    .unwrap_or(false),
                from_registry: registry.is_some() && tool.signature.is_none(),
                file: signature_file,
                statement: Statement::new(&name, tool.sha256, &written_table, &limits, strict),
            };
            extras.insert(name.clone(), table.extra);
            tools.insert(
                name.clone(),
                ToolPolicy {
                    name,
                    component,
                    registry,
                    sha256: tool.sha256,
                    limits,
                    grants,
                    strict,
                    signing,
                },
            );
        }
        let policy = Policy {
            path: path.to_owned(),
            host: HostSettings {
                cache_dir,
                data_dir,
                database,
                max_concurrency,
            },
            trust,
            tools,
        };
        Ok((policy, extras))
    }

    /// The file it was read from (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Settings of the host itself (`[host]`).
    pub fn host(&self) -> &HostSettings {
        &self.host
    }

    /// The signing keys it trusts (`[trust] keys`).
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The whitelisted tools, by name.
    pub fn tools(&self) -> &BTreeMap<String, ToolPolicy> {
        &self.tools
    }

    /// The same whitelist keeping its durable state in `data_dir` instead, in SQLite files even
    /// where it names a shared database: a scratch host for evaluation and replay, whose tools
    /// must not touch production storage.
    pub fn with_data_dir(mut self, data_dir: PathBuf) -> Self {
        self.host.data_dir = data_dir;
        self.host.database = None;
        self
    }

    /// The same whitelist with every grant that reaches outside the host taken away or made
    /// read-only: no HTTP (nor its secrets), no sockets, granted directories read-only. What runs
    /// a recorded run again must not repeat its side effects; tools that try are denied inside
    /// the sandbox (and `strict` is lifted so they still load). Returns what was restricted, in
    /// words, per tool.
    pub fn without_side_effects(mut self) -> (Self, Vec<String>) {
        let mut restricted = Vec::new();
        for tool in self.tools.values_mut() {
            let grants = &mut tool.grants;
            let mut what = Vec::new();
            if !grants.http.is_empty() {
                let urls: Vec<String> = grants.http.iter().map(ToString::to_string).collect();
                what.push(format!("no HTTP (granted: {})", urls.join(", ")));
                grants.http.clear();
                grants.secrets.clear();
            }
            if !grants.sockets.is_empty() {
                let addrs: Vec<String> =
                    grants.sockets.iter().map(|g| g.addr.to_string()).collect();
                what.push(format!("no sockets (granted: {})", addrs.join(", ")));
                grants.sockets.clear();
            }
            for fs in grants.fs.iter_mut().filter(|g| g.mode == FsMode::ReadWrite) {
                what.push(format!("{} read-only (granted read-write)", fs.guest));
                fs.mode = FsMode::ReadOnly;
            }
            if !what.is_empty() {
                tool.strict = false;
                restricted.push(format!("{}: {}", tool.name, what.join("; ")));
            }
        }
        (self, restricted)
    }
}

/// Tool names become prefixes of function names that OpenAI and MCP accept (`[a-zA-Z0-9_-]`),
/// joined to the function by `__`; so a name is lowercase letters, digits, `-` and single `_`.
fn check_tool_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !ok_chars || !starts || name.len() > 32 || name.contains("__") {
        return Err(format!(
            "`{name}` is not a valid tool name: use 1 to 32 lowercase letters, digits, `-` or `_`, \
             starting with a letter, without `__`"
        ));
    }
    Ok(())
}

fn check_limits(limits: &Limits, table: &str) -> Result<(), (String, String)> {
    if limits.fuel == 0 {
        return Err((
            format!("{table}.fuel"),
            "a fuel of 0 would stop every call".into(),
        ));
    }
    if limits.memory.0 < 64 << 10 {
        return Err((
            format!("{table}.memory"),
            format!("{} is below one wasm page (64 KiB)", limits.memory),
        ));
    }
    if limits.memory.0 > 4 << 30 {
        return Err((
            format!("{table}.memory"),
            format!(
                "{} is above the 4 GiB a 32-bit memory can address",
                limits.memory
            ),
        ));
    }
    for (key, value) in [
        ("max_output", limits.max_output),
        ("max_input", limits.max_input),
    ] {
        if value.0 == 0 {
            return Err((
                format!("{table}.{key}"),
                "a limit of 0 bytes would refuse every call".into(),
            ));
        }
    }
    Ok(())
}

/// Where a host directory defaults to: `$HARNESS_…` if set, else the XDG base directory, else
/// its usual place under `$HOME`, else a hidden folder next to the whitelist.
struct DefaultDir {
    harness_var: &'static str,
    xdg_var: &'static str,
    under_home: &'static str,
    fallback: &'static str,
}

/// The compile cache.
const CACHE_DIR: DefaultDir = DefaultDir {
    harness_var: "HARNESS_CACHE_DIR",
    xdg_var: "XDG_CACHE_HOME",
    under_home: ".cache",
    fallback: ".harness-cache",
};

/// Durable state (the key-value store).
const DATA_DIR: DefaultDir = DefaultDir {
    harness_var: "HARNESS_DATA_DIR",
    xdg_var: "XDG_DATA_HOME",
    under_home: ".local/share",
    fallback: ".harness-data",
};

impl DefaultDir {
    fn resolve(&self, policy_dir: &Path) -> PathBuf {
        let var = |name| std::env::var_os(name).map(PathBuf::from);
        if let Some(dir) = var(self.harness_var) {
            return dir;
        }
        if let Some(dir) = var(self.xdg_var) {
            return dir.join("harness");
        }
        if let Some(home) = var("HOME") {
            return home.join(self.under_home).join("harness");
        }
        policy_dir.join(self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn with_component(text: &str) -> (tempfile::TempDir, Result<Policy, PolicyError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("calc.wasm"), b"\0asm").unwrap();
        let path = dir.path().join("harness.toml");
        std::fs::write(&path, text).unwrap();
        let policy = Policy::load(&path);
        (dir, policy)
    }

    #[test]
    fn trust_keys_and_registry_components_are_checked_at_load() {
        let (_dir, policy) = with_component("[trust.keys]\nalice = \"RWQnot-a-key\"\n");
        let err = policy.unwrap_err().to_string();
        assert!(
            err.contains("trust.keys.alice: not a minisign public key"),
            "{err}"
        );

        let (_dir, policy) = with_component(&format!(
            "[tools.calc]\ncomponent = \"oci://calc:1\"\nsha256 = \"{DIGEST}\"\n"
        ));
        let err = policy.unwrap_err().to_string();
        assert!(
            err.contains("tools.calc.component: `oci://calc:1`"),
            "{err}"
        );

        let (dir, policy) = with_component(&format!(
            "[host]\ncache_dir = \"c\"\n[defaults]\nrequire_signatures = true\n\
             [tools.calc]\ncomponent = \"oci://127.0.0.1:5000/t/calc:1\"\nsha256 = \"{DIGEST}\"\n"
        ));
        let calc = &policy.unwrap().tools["calc"];
        assert_eq!(
            calc.component,
            dir.path().join(format!("c/oci/{DIGEST}.wasm"))
        );
        assert_eq!(
            calc.signing.file,
            dir.path().join(format!("c/oci/{DIGEST}.sig"))
        );
        assert!(calc.signing.required && calc.signing.from_registry);
        assert_eq!(
            calc.registry.as_ref().unwrap().to_string(),
            "oci://127.0.0.1:5000/t/calc:1"
        );

        // A signature file named in the whitelist is read, never replaced by a pulled one.
        let (dir, policy) = with_component(&format!(
            "[tools.calc]\ncomponent = \"oci://127.0.0.1:5000/t/calc:1\"\nsha256 = \"{DIGEST}\"\n\
             signature = \"calc.sig\"\n"
        ));
        let calc = &policy.unwrap().tools["calc"];
        assert_eq!(calc.signing.file, dir.path().join("calc.sig"));
        assert!(!calc.signing.from_registry);
    }

    #[test]
    fn tools_inherit_defaults_and_override_them() {
        let (dir, policy) = with_component(&format!(
            r#"
            [defaults]
            fuel = 1_000
            timeout = "2s"
            [tools.calc]
            component = "calc.wasm"
            sha256 = "{DIGEST}"
            memory = "1 MiB"
            "#
        ));
        let policy = policy.unwrap();
        let calc = &policy.tools["calc"];
        assert_eq!(calc.component, dir.path().join("calc.wasm"));
        assert_eq!(calc.limits.fuel, 1_000);
        assert_eq!(calc.limits.timeout, Duration::from_secs(2));
        assert_eq!(calc.limits.memory, Bytes(1 << 20));
        assert_eq!(calc.limits.max_output, Limits::default().max_output);
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let (_dir, policy) = with_component(&format!(
            "[tools.calc]\ncomponent = \"calc.wasm\"\nsha256 = \"{DIGEST}\"\nfuell = 5\n"
        ));
        let err = policy.unwrap_err().to_string();
        assert!(err.contains("harness.toml"), "{err}");
        assert!(err.contains("fuell"), "{err}");
    }

    #[test]
    fn an_extension_reads_its_keys_and_unknown_ones_name_their_line() {
        /// Reads `[team]` and a tool's `owner`.
        #[derive(Default)]
        struct Team(Option<String>);
        impl ExtraKeys for Team {
            fn keys() -> Vec<&'static str> {
                vec!["team", "owner"]
            }
            fn read<'de, D: serde::Deserializer<'de>>(
                &mut self,
                _key: &str,
                value: D,
            ) -> Result<(), D::Error> {
                self.0 = Some(toml::Value::deserialize(value)?.to_string());
                Ok(())
            }
        }
        impl Extension for Team {
            type Tool = Team;
            type Checked = (Option<String>, BTreeMap<String, Option<String>>);
            fn check(
                self,
                tools: BTreeMap<String, Team>,
                _policy: &Policy,
            ) -> Result<Self::Checked, (String, String)> {
                Ok((self.0, tools.into_iter().map(|(k, t)| (k, t.0)).collect()))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("calc.wasm"), b"\0asm").unwrap();
        let path = dir.path().join("harness.toml");
        let tool = format!("[tools.calc]\ncomponent = \"calc.wasm\"\nsha256 = \"{DIGEST}\"\n");
        let text = format!("[team]\nname = \"ops\"\n{tool}owner = \"ana\"\n");
        let (policy, (team, owners)) =
            Policy::parse_extended::<Team>(&text, &path, &|_| None).unwrap();
        assert_eq!(policy.tools()["calc"].limits, Limits::default());
        assert_eq!(team.as_deref(), Some("{ name = \"ops\" }"));
        assert_eq!(owners["calc"].as_deref(), Some("\"ana\""));

        let err = Policy::parse_extended::<Team>(&format!("{tool}ownr = 1\n"), &path, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "points at the key: {err}");
        assert!(err.contains("or one of `team`, `owner`"), "{err}");
        let err = Policy::parse(&text, &path).unwrap_err().to_string();
        assert!(
            err.contains("unknown field `team`"),
            "the sandbox alone refuses it: {err}"
        );
    }

    #[test]
    fn bad_units_name_the_tool_and_key() {
        let (_dir, policy) = with_component(&format!(
            "[tools.calc]\ncomponent = \"calc.wasm\"\nsha256 = \"{DIGEST}\"\ntimeout = \"5 fortnights-ish\"\n"
        ));
        let err = policy.unwrap_err().to_string();
        assert!(
            err.contains("line 4"),
            "points at the line of the key: {err}"
        );
        assert!(
            err.contains("`5 fortnights-ish` is not a duration"),
            "{err}"
        );
    }

    #[test]
    fn missing_component_and_missing_digest_are_errors() {
        let (_dir, policy) = with_component(&format!(
            "[tools.kb]\ncomponent = \"kb.wasm\"\nsha256 = \"{DIGEST}\"\n"
        ));
        let err = policy.unwrap_err().to_string();
        assert!(
            err.contains("tools.kb.component") && err.contains("kb.wasm"),
            "{err}"
        );

        let (_dir, policy) = with_component("[tools.calc]\ncomponent = \"calc.wasm\"\n");
        let err = policy.unwrap_err().to_string();
        assert!(err.contains("sha256"), "{err}");
    }

    #[test]
    fn duplicate_tools_and_bad_names_are_errors() {
        let tool = format!("component = \"calc.wasm\"\nsha256 = \"{DIGEST}\"\n");
        let (_dir, policy) = with_component(&format!("[tools.calc]\n{tool}[tools.calc]\n{tool}"));
        let err = policy.unwrap_err().to_string();
        assert!(err.contains("duplicate") || err.contains("calc"), "{err}");

        let (_dir, policy) = with_component(&format!("[tools.\"Calc.v2\"]\n{tool}"));
        let err = policy.unwrap_err().to_string();
        assert!(err.contains("not a valid tool name"), "{err}");
    }

    #[test]
    fn malformed_digest_is_named() {
        let (_dir, policy) =
            with_component("[tools.calc]\ncomponent = \"calc.wasm\"\nsha256 = \"1234\"\n");
        let err = policy.unwrap_err().to_string();
        assert!(err.contains("`1234` is not a SHA-256 digest"), "{err}");
    }
}
