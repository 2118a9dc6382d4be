//! The server's part of the whitelist: `[clients.NAME]`, who may call over HTTP, and `[mcp]`.
//!
//! ```toml
//! [mcp]
//! pii = { email = "mask", card = "block" }   # screen results before they leave; default: as is
//! confirm_within = "2m"      # how long a user has to answer a tool's `confirm` question
//!
//! [clients.helpdesk]
//! key_sha256 = "…"          # the SHA-256 of the client's key; `harness keys new helpdesk` makes one
//! principal = "helpdesk"     # who its calls are for (default: the client's name)
//! roles = ["support"]
//! concurrency = 16           # requests in flight at once; more get 429
//! act_for = true             # may run agents and decide approvals for its own users (`principal`)
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use harness_agent::config::{AgentTables, Config};
use harness_agent::gates::Principal;
use harness_agent::guards::pii::{PiiPolicy, Screened};
use harness_sandbox::policy::Timeout;
use harness_sandbox::policy::{Extension, ExtraKeys};
use harness_sandbox::{Policy, PolicyError, Sha256Digest};
use serde::de::{self, Deserialize, Deserializer};

/// A client allowed to call over HTTP.
#[derive(Clone, Debug)]
pub struct Client {
    /// The table's name.
    pub name: String,
    /// The SHA-256 of its key (the key itself is never stored).
    pub key_sha256: Sha256Digest,
    /// Who its calls are for.
    pub principal: Principal,
    /// Requests it may have in flight at once (`concurrency`, default 16); more get `429`.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Whether it may act for end users of its own (`act_for = true`).
    pub act_for: Option<ActFor>,
}

/// The right to act for end users: a request carrying it may name the principal (a web app's
/// logged-in user) its run, call or decision is for, so budgets, rates and roles apply per
/// end user. Granted by `act_for = true` in a client's entry; the local user has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActFor;

impl Client {
    /// Whether `key` is this client's key, compared in constant time.
    pub fn has_key(&self, key: &str) -> bool {
        let given = Sha256Digest::of(key.as_bytes());
        given
            .as_bytes()
            .iter()
            .zip(self.key_sha256.as_bytes())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
}

/// The server's settings, from the whitelist.
#[derive(Clone, Debug, Default)]
pub struct ServerSettings {
    /// The clients, by name.
    pub clients: BTreeMap<String, Client>,
    /// How personal data in a tool's result is screened before it leaves, when `[mcp] pii` asks.
    pub pii: Option<PiiPolicy>,
    /// How long a user has to answer a tool's `confirm` question (`[mcp] confirm_within`;
    /// [`ServerSettings::confirm_within`] gives the default).
    pub confirm_within: Option<Timeout>,
}

/// Reads the whitelist at `path`: the agent's [`Config`] and the server's settings, in one pass.
pub fn load(path: &Path) -> Result<(Config, ServerSettings), PolicyError> {
    let (policy, (agent, server)) = Policy::load_extended::<(AgentTables, ServerTables)>(path)?;
    Ok((Config::from((policy, agent)), server))
}

/// `[clients]` and `[mcp]` as written.
#[derive(Default)]
pub struct ServerTables {
    clients: BTreeMap<String, RawClient>,
    mcp: RawMcp,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMcp {
    pii: Option<BTreeMap<String, String>>,
    confirm_within: Option<Timeout>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    key_sha256: Sha256Digest,
    principal: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    concurrency: Option<usize>,
    #[serde(default)]
    act_for: bool,
}

impl ExtraKeys for ServerTables {
    fn keys() -> Vec<&'static str> {
        vec!["clients", "mcp"]
    }

    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, value: D) -> Result<(), D::Error> {
        match key {
            "clients" => self.clients = Deserialize::deserialize(value)?,
            "mcp" => self.mcp = Deserialize::deserialize(value)?,
            other => return Err(de::Error::custom(format!("unknown table `{other}`"))),
        }
        Ok(())
    }
}

impl Extension for ServerTables {
    type Tool = ();
    type Checked = ServerSettings;

    fn check(
        self,
        _tools: BTreeMap<String, ()>,
        _policy: &Policy,
    ) -> Result<ServerSettings, (String, String)> {
        let mut clients = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for (name, raw) in self.clients {
            if let Some(other) = keys.insert(raw.key_sha256, name.clone()) {
                return Err((
                    format!("clients.{name}.key_sha256"),
                    format!("the same key as clients.{other}; give each client its own"),
                ));
            }
            let principal = Principal {
                name: raw.principal.unwrap_or_else(|| name.clone()),
                roles: raw.roles.into_iter().collect(),
            };
            let concurrency = raw.concurrency.unwrap_or(16);
            if !(1..=1024).contains(&concurrency) {
                return Err((
                    format!("clients.{name}.concurrency"),
                    format!("{concurrency} is out of range; use 1 to 1024"),
                ));
            }
            clients.insert(
                name.clone(),
                Client {
                    name,
                    key_sha256: raw.key_sha256,
                    principal,
                    slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
                    act_for: raw.act_for.then_some(ActFor),
                },
            );
        }
        let pii = self
            .mcp
            .pii
            .map(|entries| PiiPolicy::parse(&entries))
            .transpose()
            .map_err(|(kind, message)| (format!("mcp.pii.{kind}"), message))?;
        Ok(ServerSettings {
            clients,
            pii,
            confirm_within: self.mcp.confirm_within,
        })
    }
}

impl ServerSettings {
    /// How long a user has to answer a `confirm` question: `[mcp] confirm_within`, or two
    /// minutes.
    pub fn confirm_within(&self) -> std::time::Duration {
        self.confirm_within
            .map_or(std::time::Duration::from_secs(120), |t| t.0)
    }

    /// `text` as it may leave: screened by `[mcp] pii` when set (`Err` names the kind that blocks
    /// it), else as it is.
    pub fn screen(&self, text: String) -> Result<String, &'static str> {
        match self.pii.as_ref().map(|pii| pii.apply(&text)) {
            None => Ok(text),
            Some(Screened::Passed { text, .. }) => Ok(text),
            Some(Screened::Blocked { kind, .. }) => Err(kind.name()),
        }
    }
}

/// A new client key (32 random bytes, hex, prefixed `hk_`) and its whitelist entry.
pub fn new_key(name: &str) -> std::io::Result<(String, String)> {
    let bytes = random_bytes::<32>()?;
    let key = format!("hk_{}", hex::encode(bytes));
    let entry = format!(
        "[clients.{name}]\nkey_sha256 = \"{}\"\nprincipal = \"{name}\"\nroles = []\n",
        Sha256Digest::of(key.as_bytes())
    );
    Ok((key, entry))
}

/// `N` bytes from the kernel's random source.
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}
