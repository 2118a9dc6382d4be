//! The agent's part of the whitelist: `[models.NAME]`, `[agents.NAME]`, `[budgets]`, `[alerts]`,
//! `[state]`, and each tool's gates (`roles`, `rate`, `approval`, `confirm` in `[tools.NAME]`).
//!
//! The file is the sandbox's whitelist: [`Config::load`] parses it once, through the sandbox's
//! [`Extension`] mechanism, so a key that neither the sandbox nor the agent knows is an error
//! naming it, and nothing is parsed twice.

mod agents;
mod budgets;
mod gates;
mod models;
mod rate;

pub use agents::{AgentSettings, Canary, OutputSchema, Prompt, RouteRule};
pub use budgets::{Alerts, Budgets, ErrorRate, Standing, Webhook};
pub use gates::{Condition, ToolGates};
pub use models::{ModelSettings, Provider};
pub use rate::Rate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_sandbox::policy::{Extension, ExtraKeys};
use harness_sandbox::{Policy, PolicyError};
use serde::de::{self, Deserialize, Deserializer};

use crate::state::Durability;

/// A problem as (key under the table, message).
type Invalid = (String, String);

/// The whitelist as the agent reads it: the sandbox's [`Policy`] (host settings, tools and their
/// grants) and the agent's own tables, all validated.
#[derive(Clone, Debug)]
pub struct Config {
    policy: Policy,
    models: BTreeMap<String, ModelSettings>,
    agents: BTreeMap<String, AgentSettings>,
    budgets: Budgets,
    gates: BTreeMap<String, ToolGates>,
    database: harness_db::Options,
    run_lease: Duration,
    webhooks: Vec<Webhook>,
}

/// No gates: every principal may call the tool, as often as it likes, without approval.
static OPEN: ToolGates = ToolGates {
    roles: None,
    rate: None,
    approval: None,
    confirm: None,
};

impl Config {
    /// Reads and validates the whitelist at `path`, secrets from the process environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, PolicyError> {
        Policy::load_extended::<AgentTables>(path).map(Config::from)
    }

    /// Validates whitelist `text` as if read from `path`, reading secrets through `env`.
    pub fn parse_with_env(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, PolicyError> {
        Policy::parse_extended::<AgentTables>(text, path, env).map(Config::from)
    }

    /// The sandbox's part: host settings and tools.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The models agents may use, by name.
    pub fn models(&self) -> &BTreeMap<String, ModelSettings> {
        &self.models
    }

    /// The agents, by name.
    pub fn agents(&self) -> &BTreeMap<String, AgentSettings> {
        &self.agents
    }

    /// The hard limits every agent's runs count toward.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Where raised alerts are delivered (`[alerts] webhooks`).
    pub fn webhooks(&self) -> &[Webhook] {
        &self.webhooks
    }

    /// How long the state's commits wait for the disk (`[state] durability`).
    pub fn durability(&self) -> Durability {
        self.database.durability
    }

    /// How long a server's lease on each run it drives lasts unless renewed (`[state]
    /// run_lease`, 30 s by default): a run of a server that died is ended as abandoned this long
    /// after its last renewal.
    pub fn run_lease(&self) -> Duration {
        self.run_lease
    }

    /// How the state's database is opened (`[state]`: durability, and for PostgreSQL
    /// `max_connections`, `connect_timeout`, `statement_timeout`).
    pub fn db_options(&self) -> harness_db::Options {
        self.database.clone()
    }

    /// The gates of tool `tool` (none, for a tool without `roles`, `rate`, `approval` or `confirm`).
    pub fn gates(&self, tool: &str) -> &ToolGates {
        self.gates.get(tool).unwrap_or(&OPEN)
    }

    /// The same whitelist keeping durable state in `data_dir`: scratch state for evaluation
    /// and replay, whose alerts go to no webhook.
    pub fn with_data_dir(self, data_dir: PathBuf) -> Config {
        Config {
            policy: self.policy.with_data_dir(data_dir),
            webhooks: Vec::new(),
            ..self
        }
    }

    /// The same whitelist with no grant that reaches outside the host (see
    /// [`Policy::without_side_effects`]) and no alert webhook, for replaying a recorded run;
    /// and what was restricted.
    pub fn without_side_effects(self) -> (Config, Vec<String>) {
        let (policy, mut restricted) = self.policy.without_side_effects();
        if !self.webhooks.is_empty() {
            restricted.push("[alerts] webhooks: alerts are not delivered".into());
        }
        (
            Config {
                policy,
                webhooks: Vec::new(),
                ..self
            },
            restricted,
        )
    }
}

impl From<(Policy, AgentPart)> for Config {
    fn from((policy, checked): (Policy, AgentPart)) -> Config {
        Config {
            policy,
            models: checked.models,
            agents: checked.agents,
            budgets: checked.budgets,
            gates: checked.gates,
            database: checked.database,
            run_lease: checked.run_lease,
            webhooks: checked.webhooks,
        }
    }
}

/// The agent's part of the whitelist as a sandbox [`Extension`]: `[models]`, `[agents]`,
/// `[budgets]`, `[alerts]`, `[state]` and each tool's `roles`, `rate`, `approval` and `confirm`. [`Config::load`]
/// uses it alone; a layer above (a server with tables of its own) parses it together with its
/// own extension, `Policy::load_extended::<(AgentTables, Its)>`, and makes the [`Config`] from
/// the result.
#[derive(Default)]
pub struct AgentTables {
    models: BTreeMap<String, models::RawModel>,
    agents: BTreeMap<String, agents::RawAgent>,
    budgets: Budgets,
    alerts: Alerts,
    state: StateTable,
}

/// The `[state]` table.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateTable {
    #[serde(default)]
    durability: Durability,
    max_connections: Option<usize>,
    connect_timeout: Option<String>,
    statement_timeout: Option<String>,
    run_lease: Option<String>,
}

/// How long a server's lease on a run it drives lasts unless renewed (`[state] run_lease`).
const RUN_LEASE: Duration = Duration::from_secs(30);

impl StateTable {
    /// The database options it sets, each checked.
    fn options(&self) -> Result<harness_db::Options, Invalid> {
        let defaults = harness_db::Options::default();
        let max_connections = self.max_connections.unwrap_or(defaults.max_connections);
        if !(1..=1000).contains(&max_connections) {
            return Err((
                "state.max_connections".into(),
                format!("{max_connections} is out of range; use 1 to 1000"),
            ));
        }
        Ok(harness_db::Options {
            durability: self.durability,
            max_connections,
            connect_timeout: duration(
                "connect_timeout",
                self.connect_timeout.as_deref(),
                defaults.connect_timeout,
            )?,
            statement_timeout: duration(
                "statement_timeout",
                self.statement_timeout.as_deref(),
                defaults.statement_timeout,
            )?,
        })
    }

    /// The lease a server holds on each run it drives.
    fn run_lease(&self) -> Result<Duration, Invalid> {
        duration("run_lease", self.run_lease.as_deref(), RUN_LEASE)
    }
}

/// `[state] KEY`, a duration other than zero, or `default` when absent.
fn duration(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, Invalid> {
    let Some(text) = value else {
        return Ok(default);
    };
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            (
                format!("state.{key}"),
                format!("`{text}` is not a duration; write e.g. \"5s\" or \"500ms\""),
            )
        })
}

impl ExtraKeys for AgentTables {
    fn keys() -> Vec<&'static str> {
        vec!["models", "agents", "budgets", "alerts", "state"]
    }

    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, value: D) -> Result<(), D::Error> {
        match key {
            "models" => self.models = Deserialize::deserialize(value)?,
            "agents" => self.agents = Deserialize::deserialize(value)?,
            "budgets" => self.budgets = Deserialize::deserialize(value)?,
            "alerts" => self.alerts = Deserialize::deserialize(value)?,
            "state" => self.state = Deserialize::deserialize(value)?,
            other => return Err(de::Error::custom(format!("unknown table `{other}`"))),
        }
        Ok(())
    }
}

/// A tool's gate keys as written.
#[derive(Default)]
pub struct RawToolGates {
    roles: Option<Vec<String>>,
    rate: Option<Rate>,
    approval: Option<gates::RawCondition>,
    confirm: Option<gates::RawCondition>,
}

impl ExtraKeys for RawToolGates {
    fn keys() -> Vec<&'static str> {
        vec!["roles", "rate", "approval", "confirm"]
    }

    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, value: D) -> Result<(), D::Error> {
        match key {
            "roles" => self.roles = Some(Deserialize::deserialize(value)?),
            "rate" => self.rate = Some(Deserialize::deserialize(value)?),
            "approval" => self.approval = Some(Deserialize::deserialize(value)?),
            "confirm" => self.confirm = Some(Deserialize::deserialize(value)?),
            other => return Err(de::Error::custom(format!("unknown key `{other}`"))),
        }
        Ok(())
    }
}

/// The agent's tables, checked: with the [`Policy`] they were read with, a [`Config`].
pub struct AgentPart {
    models: BTreeMap<String, ModelSettings>,
    agents: BTreeMap<String, AgentSettings>,
    budgets: Budgets,
    gates: BTreeMap<String, ToolGates>,
    database: harness_db::Options,
    run_lease: Duration,
    webhooks: Vec<Webhook>,
}

impl Extension for AgentTables {
    type Tool = RawToolGates;
    type Checked = AgentPart;

    fn check(
        self,
        tools: BTreeMap<String, RawToolGates>,
        policy: &Policy,
    ) -> Result<AgentPart, (String, String)> {
        let base = policy.path().parent().unwrap_or(Path::new("."));
        self.alerts.check()?;
        let mut gates = BTreeMap::new();
        for (name, raw) in tools {
            if raw.roles.as_ref().is_some_and(Vec::is_empty) {
                return Err((
                    format!("tools.{name}.roles"),
                    "an empty list lets nobody call the tool; remove the tool instead".into(),
                ));
            }
            let condition = |raw: Option<gates::RawCondition>, key: &str| {
                raw.map(gates::RawCondition::check)
                    .transpose()
                    .map_err(|msg| (format!("tools.{name}.{key}"), msg))
            };
            let approval = condition(raw.approval, "approval")?;
            let confirm = condition(raw.confirm, "confirm")?;
            gates.insert(
                name,
                ToolGates {
                    roles: raw.roles.map(|roles| roles.into_iter().collect()),
                    rate: raw.rate,
                    approval,
                    confirm,
                },
            );
        }
        let mut models = BTreeMap::new();
        for (name, model) in self.models {
            let checked = model
                .check(&name, base)
                .map_err(|(key, msg)| (format!("models.{name}.{key}"), msg))?;
            models.insert(name, checked);
        }
        let tool_names: BTreeSet<&str> = policy.tools().keys().map(String::as_str).collect();
        let mut agents = BTreeMap::new();
        for (name, agent) in self.agents {
            let checked = agent
                .check(
                    &name,
                    &models,
                    &tool_names,
                    &self.budgets,
                    &self.alerts,
                    base,
                )
                .map_err(|(key, msg)| (format!("agents.{name}.{key}"), msg))?;
            agents.insert(name, checked);
        }
        Ok(AgentPart {
            models,
            agents,
            budgets: self.budgets,
            gates,
            database: self.state.options()?,
            run_lease: self.state.run_lease()?,
            webhooks: self.alerts.webhooks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse_with_env(text, Path::new("/etc/harness/harness.toml"), &|_| None)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn state_durability_defaults_to_admissions_and_names_bad_values() {
        assert_eq!(parse("").unwrap().durability(), Durability::Admissions);
        let os = parse("[state]\ndurability = \"os\"\n").unwrap();
        assert_eq!(os.durability(), Durability::Os);
        let every = parse("[state]\ndurability = \"every-record\"\n").unwrap();
        assert_eq!(every.durability(), Durability::EveryRecord);

        let err = parse("[state]\ndurability = \"sometimes\"\n").unwrap_err();
        assert!(err.contains("harness.toml"), "{err}");
        assert!(err.contains("sometimes"), "{err}");
        assert!(err.contains("`every-record`, `admissions`"), "{err}");
        let err = parse("[state]\ndurabilty = \"os\"\n").unwrap_err();
        assert!(err.contains("durabilty"), "{err}");
    }

    #[test]
    fn confirm_and_approval_take_the_same_conditions_and_name_the_key_when_wrong() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.wasm"), "abc").unwrap();
        let path = dir.path().join("harness.toml");
        let parse =
            |text: &str| Config::parse_with_env(text, &path, &|_| None).map_err(|e| e.to_string());
        // The SHA-256 of "abc".
        let tool = |gates: &str| {
            format!(
                "[tools.tickets]\ncomponent = \"t.wasm\"\n\
                 sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"\n\
                 {gates}\n"
            )
        };
        let both = parse(&tool(
            "approval = \"required\"\nconfirm = { when = { priority = [\"urgent\"] } }",
        ))
        .unwrap();
        let gates = both.gates("tickets");
        assert_eq!(gates.approval, Some(Condition::Always));
        let urgent = serde_json::json!({"priority": "urgent"});
        let confirm = gates.confirm.as_ref().unwrap();
        assert!(confirm.applies(urgent.as_object().unwrap()));
        assert!(!confirm.applies(serde_json::json!({"priority": "low"}).as_object().unwrap()));

        let err = parse(&tool("confirm = \"always\"")).unwrap_err();
        assert!(err.contains("tools.tickets.confirm"), "{err}");
        assert!(err.contains("`always` is not a condition"), "{err}");
        let err = parse(&tool("confirm = { when = {} }")).unwrap_err();
        assert!(err.contains("tools.tickets.confirm"), "{err}");
    }
}
