//! `harness metrics` and `harness budget show`: figures from the audit log and the budget
//! ledger.

use anyhow::{Result, bail};
use harness_agent::config::Config;

use crate::agents;
use crate::exit::Exit;

/// `harness metrics`: runs per prompt version, calls and errors per tool, refusals per gate.
pub fn show(config: &Config, window: std::time::Duration, json: bool) -> Result<Exit> {
    let state = agents::state(config)?;
    let metrics = state.metrics(window)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
        return Ok(Exit::Success);
    }
    println!("over the last {}:", humantime::format_duration(window));
    for p in &metrics.prompts {
        let judged = match p.mean_score {
            Some(mean) => format!(", {} feedback (mean score {mean:.2})", p.feedback),
            None => String::new(),
        };
        let canary = if p.canary { " (canary)" } else { "" };
        println!(
            "prompt {}{canary}: {} runs, {} answered, {} tokens{judged}",
            p.version, p.runs, p.answered, p.tokens
        );
    }
    for t in &metrics.tools {
        println!(
            "tool {}: {} calls, {} errors, {} fuel",
            t.function, t.calls, t.errors, t.fuel
        );
    }
    for (gate, count) in &metrics.refusals {
        println!("refused by {gate}: {count}");
    }
    Ok(Exit::Success)
}

/// `harness budget show`: what each budget has spent in its current window, against its limit.
pub fn budgets(config: &Config) -> Result<Exit> {
    let state = agents::state(config)?;
    if config.agents().is_empty() {
        bail!(
            "{} defines no agents, so no budgets apply",
            config.policy().path().display()
        );
    }
    let standings = config.budgets().standings(&state)?;
    for standing in &standings {
        println!(
            "{}: {} of {} per {}",
            standing.scope,
            standing.spent,
            standing.limit,
            humantime::format_duration(standing.window)
        );
    }
    if standings.is_empty() {
        println!("nothing spent against a budget in its current window");
    }
    Ok(Exit::Success)
}
