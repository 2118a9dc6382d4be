//! `harness eval` and `harness replay`: the agent loop re-run against a golden dataset or a
//! recorded run, in a host with scratch state so production logs, rates, budgets and storage
//! stay untouched.

use std::path::Path;

use anyhow::Result;
use harness_agent::config::Config;
use harness_agent::scratch::Scratch;
use harness_agent::{eval, replay};

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
    let scratch = Scratch::new(config.clone(), &settings.name, &|var| {
        std::env::var(var).ok()
    })?;
    let runtime = crate::load::runtime()?;
    let report = runtime.block_on(eval::evaluate(scratch.agent(), model, &cases))?;
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
    let state = agents::state(config)?;
    let runtime = crate::load::runtime()?;
    let (report, restricted) =
        runtime.block_on(replay::replay_run(config, &state, run_id, &|var| {
            std::env::var(var).ok()
        }))?;
    for what in &restricted {
        println!("replaying without side effects: {what}");
    }
    match &report.divergence {
        None => {
            println!(
                "replayed {run_id} ({} model responses, {} tool calls): matched",
                report.responses, report.compared
            );
            Ok(Exit::Success)
        }
        Some(divergence) => {
            println!("replayed {run_id}: DIVERGED at {divergence}");
            Ok(Exit::Diverged)
        }
    }
}
