//! `harness eval` and `harness replay`: the agent loop re-run against a golden dataset or a
//! recorded run, in a host with scratch state so production logs, rates, budgets and storage
//! stay untouched.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use harness_agent::config::Config;
use harness_agent::run::Agent;
use harness_agent::state::StateStore;
use harness_agent::{eval, replay};
use harness_sandbox::Host;

use crate::agents;
use crate::exit::Exit;

/// `harness eval`: runs a golden dataset against an agent, with state in a scratch folder so
/// production audit logs, rates and budgets are untouched.
pub fn eval(config: &Config, dataset: &Path, agent: Option<&str>, json: bool) -> Result<Exit> {
    let cases = eval::load(dataset)?;
    let settings = agents::choose(config, agent)?;
    let model = if cases.iter().all(|c| c.responses.is_some()) {
        None
    } else {
        Some(agents::model(config, settings, 0)?)
    };
    let scratch = Scratch::new(config.clone(), settings)?;
    let runtime = crate::load::runtime()?;
    let report = runtime.block_on(eval::evaluate(&scratch.agent, model, &cases))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for case in &report.cases {
            if case.failures.is_empty() {
                println!("PASS  {}", case.name);
            } else {
                println!("FAIL  {}: {}", case.name, case.failures.join("; "));
            }
        }
        let failed = report
            .cases
            .iter()
            .filter(|c| !c.failures.is_empty())
            .count();
        println!(
            "{} cases: {} passed, {failed} failed · tool selection precision {:.2}, recall {:.2}",
            report.cases.len(),
            report.cases.len() - failed,
            report.precision,
            report.recall
        );
    }
    Ok(if report.passed() {
        Exit::Success
    } else {
        Exit::Failed
    })
}

/// `harness replay`: re-runs a recorded run with its recorded model responses, its tools
/// re-executed in a host with scratch state (so replaying cannot repeat a side effect), and
/// reports the first divergence.
pub fn replay(config: &Config, run_id: &str) -> Result<Exit> {
    let recorded = replay::recorded(&*agents::state(config)?, run_id)?;
    let settings = config.agents().get(&recorded.agent).with_context(|| {
        format!(
            "run {run_id} used agent `{}`, which {} no longer defines",
            recorded.agent,
            config.policy().path().display()
        )
    })?;
    // Replay runs the tools again: none may reach anything outside the scratch folder.
    let (config, restricted) = config.clone().without_side_effects();
    for what in &restricted {
        println!("replaying without side effects: {what}");
    }
    let scratch = Scratch::new(config, settings)?;
    let runtime = crate::load::runtime()?;
    let report = runtime.block_on(replay::replay(&scratch.agent, run_id, &recorded))?;
    match &report.divergence {
        None => {
            println!(
                "replayed {run_id} ({} model responses, {} tool calls): matched",
                recorded.responses.len(),
                report.compared
            );
            Ok(Exit::Success)
        }
        Some(divergence) => {
            println!("replayed {run_id}: DIVERGED at {divergence}");
            Ok(Exit::Diverged)
        }
    }
}

/// An agent over a host and state with a private, temporary data directory: where eval and
/// replay run, so production audit logs, rates, budgets and tool storage stay untouched.
struct Scratch {
    agent: Agent,
    _dir: tempfile::TempDir,
}

impl Scratch {
    fn new(config: Config, settings: &harness_agent::config::AgentSettings) -> Result<Scratch> {
        let dir = tempfile::tempdir().context("creating a scratch folder")?;
        let config = config.with_data_dir(dir.path().join("data"));
        let state = Arc::new(StateStore::for_config(&config)?);
        let host = Host::load(config.policy().clone())?;
        Ok(Scratch {
            agent: agents::agent(&config, host, state, settings, 0)?,
            _dir: dir,
        })
    }
}
