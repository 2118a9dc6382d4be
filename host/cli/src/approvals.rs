//! `harness approvals list|approve|deny`: human decisions on paused runs; the last decision of a
//! run resumes it here.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use harness_agent::config::Config;
use harness_agent::gates::Principal;
use harness_agent::run::paused_run;
use harness_agent::state::records::Decision;
use harness_sandbox::Host;

use crate::agents;
use crate::exit::Exit;
use crate::run::{ALERT_DELIVERY, exit, print_run};

/// `harness approvals list`.
pub fn list(config: &Config, all: bool) -> Result<Exit> {
    let state = agents::state(config)?;
    let approvals = state.approvals(all)?;
    if approvals.is_empty() {
        println!("no {}approvals", if all { "" } else { "pending " });
    }
    for a in approvals {
        let decided = match (&a.decision, &a.decided_by) {
            (Some(decision), Some(by)) => {
                format!("{decision} by {by}: {}", a.reason.as_deref().unwrap_or(""))
            }
            _ => "pending".into(),
        };
        println!(
            "{}  {}  {} {}  for {} (run {}, asked {})",
            a.id, decided, a.function, a.arguments, a.principal, a.run_id, a.requested_at
        );
    }
    Ok(Exit::Success)
}

/// `harness approvals approve|deny`: records the decision and, when it was the run's last
/// pending one, resumes the run here and prints the rest of it.
pub fn decide(
    config: &Config,
    host: Host,
    id: i64,
    decision: Decision,
    reason: &str,
) -> Result<Exit> {
    let state = agents::state(config)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let decided = state.decide(id, decision, &who, reason)?;
    println!(
        "approval {id} ({} {}) {} by {who}",
        decided.function, decided.arguments, decision
    );
    let waiting: Vec<_> = state
        .approvals_of_run(&decided.run_id)?
        .into_iter()
        .filter(|a| a.decision.is_none())
        .map(|a| a.id.to_string())
        .collect();
    if !waiting.is_empty() {
        println!(
            "run {} still waits for approval {}",
            decided.run_id,
            waiting.join(", ")
        );
        return Ok(Exit::Success);
    }
    let Some(paused) = paused_run(&state, &decided.run_id)? else {
        println!(
            "no paused run waits for it: the caller's next call with the same arguments {} once",
            match decision {
                Decision::Approved => "runs",
                Decision::Denied => "is refused",
            }
        );
        return Ok(Exit::Success);
    };
    let settings = config.agents().get(&paused.agent).with_context(|| {
        format!(
            "run {} belongs to agent `{}`, which {} no longer defines",
            decided.run_id,
            paused.agent,
            config.policy().path().display()
        )
    })?;
    let agent = agents::agent(config, host, state, settings, paused.turns)?;
    let runtime = crate::load::runtime()?;
    let resumed = runtime.block_on(async {
        let resumed = agent.resume(&decided.run_id).await;
        agent.gate().webhooks().finish(ALERT_DELIVERY).await;
        resumed
    })?;
    match resumed {
        Some(report) => {
            let principal = Principal {
                name: decided.principal.clone(),
                roles: BTreeSet::new(),
            };
            print_run(&settings.name, &principal, None, &report);
            Ok(exit(report.status))
        }
        None => {
            println!("run {} was resumed by another process", decided.run_id);
            Ok(Exit::Success)
        }
    }
}
