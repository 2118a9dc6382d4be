//! `harness kill` / `harness enable`: the switches that take a tool or an agent out of service
//! for every running host.

use anyhow::{Result, bail};
use harness_agent::config::Config;
use harness_agent::state::switches::Target;

use crate::agents;
use crate::exit::Exit;

/// `harness kill` / `harness enable`: flips the switch of a tool or an agent.
pub fn flip(config: &Config, name: &str, agent: bool, kill: Option<&str>) -> Result<Exit> {
    let path = config.policy().path().display();
    let target = if agent {
        if !config.agents().contains_key(name) {
            bail!("no [agents.{name}] in {path}");
        }
        Target::Agent(name.to_owned())
    } else {
        if !config.policy().tools().contains_key(name) {
            bail!("no [tools.{name}] in {path}");
        }
        Target::Tool(name.to_owned())
    };
    let state = agents::state(config)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    match kill {
        Some(reason) => {
            state.kill(&target, reason, &who)?;
            println!("{target} is switched off: {reason}");
        }
        None if state.enable(&target, &who)? => println!("{target} is back in service"),
        None => println!("{target} was not switched off"),
    }
    Ok(Exit::Success)
}
