//! Scratch: an agent over a host and state in a private, temporary data directory, where
//! evaluation and replay run, so production audit logs, rates, budgets and tool storage stay
//! untouched.

use std::sync::Arc;

use harness_sandbox::{Host, LoadError};

use crate::config::Config;
use crate::models::{self, ModelError};
use crate::run::{Agent, UnknownAgent};
use crate::state::{OpenError, StateStore};

/// Why a scratch agent could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// The temporary folder could not be made.
    #[error("creating a scratch folder: {0}")]
    Folder(#[from] std::io::Error),
    /// Its state could not be opened.
    #[error(transparent)]
    State(#[from] OpenError),
    /// The tools could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The agent's model cannot be set up.
    #[error("the agent's model: {0}")]
    Model(#[from] ModelError),
    /// The whitelist has no such agent.
    #[error(transparent)]
    Agent(#[from] UnknownAgent),
}

/// Agent `name` of a whitelist, running in a temporary data directory removed when dropped.
pub struct Scratch {
    agent: Agent,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// Agent `name` of `config` over scratch state, its model's keys read from `env`.
    pub fn new(
        config: Config,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Scratch, ScratchError> {
        let dir = tempfile::tempdir()?;
        let config = config.with_data_dir(dir.path().join("data"));
        let settings = config.agents().get(name).ok_or_else(|| UnknownAgent {
            name: name.to_owned(),
            known: config.agents().keys().cloned().collect(),
        })?;
        let model = models::for_agent(&config, settings, 0, env)?;
        let state = Arc::new(StateStore::for_config(&config)?);
        let host = Host::load(config.policy().clone())?;
        let agent = Agent::new(host, state, Arc::new(config), name, model)?;
        Ok(Scratch { agent, _dir: dir })
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }
}
