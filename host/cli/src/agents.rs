//! Choosing an agent of the whitelist and connecting it to its model, for the commands that run
//! one.

use std::sync::Arc;

use anyhow::{Result, bail};
use harness_agent::config::{AgentSettings, Config};
use harness_agent::models::{self, Model};
use harness_agent::run::Agent;
use harness_agent::state::StateStore;
use harness_sandbox::Host;

/// The agent named `name`, or the only one.
pub fn choose<'c>(config: &'c Config, name: Option<&str>) -> Result<&'c AgentSettings> {
    let agents = config.agents();
    let listed = || agents.keys().cloned().collect::<Vec<_>>().join(", ");
    let path = config.policy().path().display();
    match name {
        Some(name) => match agents.get(name) {
            Some(settings) => Ok(settings),
            None => bail!("no [agents.{name}] in {path}; it has: {}", listed()),
        },
        None => match agents.values().collect::<Vec<_>>().as_slice() {
            [only] => Ok(only),
            [] => bail!("{path} defines no [agents.NAME]"),
            _ => bail!("choose an agent with --agent: {}", listed()),
        },
    }
}

/// The agent's model with its fallbacks, keys from the environment; a scripted model continues
/// after the `turns` responses a resumed run already used.
pub fn model(config: &Config, settings: &AgentSettings, turns: usize) -> Result<Arc<dyn Model>> {
    Ok(models::for_agent(config, settings, turns, &|name| {
        std::env::var(name).ok()
    })?)
}

/// Agent `settings` over `host` and `state`, connected to its model.
pub fn agent(
    config: &Config,
    host: Host,
    state: Arc<StateStore>,
    settings: &AgentSettings,
    turns: usize,
) -> Result<Agent> {
    let model = model(config, settings, turns)?;
    Ok(Agent::new(
        host,
        state,
        Arc::new(config.clone()),
        &settings.name,
        model,
    )?)
}

/// The state database of the whitelist's data directory.
pub fn state(config: &Config) -> Result<Arc<StateStore>> {
    Ok(Arc::new(StateStore::for_config(config)?))
}
