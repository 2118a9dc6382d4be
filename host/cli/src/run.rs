//! `harness run`: an agent answering with sandboxed tools, printed step by step with each gate's
//! decision and each sandbox outcome.

use std::collections::BTreeSet;

use anyhow::Result;
use harness_agent::config::Config;
use harness_agent::gates::Principal;
use harness_agent::run::{CallDecision, CancellationToken, Event, RunReport, RunStatus};
use harness_sandbox::{Host, Outcome};

use crate::agents;
use crate::exit::Exit;

/// How long a command that ran an agent waits, before it exits, for its alerts to reach their
/// webhooks (retries included).
pub const ALERT_DELIVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// What `harness run` was asked.
pub struct RunArgs {
    /// The agent (may be omitted when the whitelist has one).
    pub agent: Option<String>,
    /// Who the run acts for.
    pub principal: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// Print the report as JSON.
    pub json: bool,
    /// The user's words.
    pub input: String,
}

/// Runs the agent on `args.input` and prints the conversation with each gate's decision.
pub fn run(config: &Config, host: Host, args: &RunArgs) -> Result<Exit> {
    let settings = agents::choose(config, args.agent.as_deref())?;
    let cancel = CancellationToken::new();
    let agent = agents::agent(config, host, agents::state(config)?, settings, 0)?
        .with_cancel(cancel.clone());
    let principal = Principal {
        name: args.principal.clone(),
        roles: args.roles.iter().cloned().collect::<BTreeSet<_>>(),
    };
    let runtime = crate::load::runtime()?;
    let report = runtime.block_on(async {
        // Ctrl-C cancels the run cleanly: it ends recorded as cancelled.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        let report = agent.run(&principal, &args.input).await;
        agent.gate().webhooks().finish(ALERT_DELIVERY).await;
        report
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_run(&settings.name, &principal, Some(&args.input), &report);
    }
    Ok(exit(report.status))
}

/// The exit of a run that ended (or paused) with `status`.
pub fn exit(status: RunStatus) -> Exit {
    match status {
        RunStatus::Answered => Exit::Success,
        RunStatus::Paused => Exit::Paused,
        _ => Exit::NoAnswer,
    }
}

/// Prints a run; `input` is `None` for the rest of a resumed run.
pub fn print_run(agent: &str, principal: &Principal, input: Option<&str>, report: &RunReport) {
    let roles = principal
        .roles
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match input {
        Some(input) => {
            println!(
                "{} · agent {agent} · {} [{roles}]",
                report.run_id, principal.name
            );
            println!("user: {input}");
        }
        None => println!(
            "{} resumed · agent {agent} · {}",
            report.run_id, principal.name
        ),
    }
    for event in &report.events {
        match event {
            Event::Masked { place, found } => {
                let kinds: Vec<_> = found
                    .iter()
                    .map(|(k, n)| format!("{n} {}", k.name()))
                    .collect();
                println!(
                    "  (masked before the model, in {place}: {})",
                    kinds.join(", ")
                );
            }
            Event::Model { text, calls, usage } => {
                let said = text.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
                let asked = if *calls > 0 {
                    format!(" (asks for {calls} tool call(s))")
                } else {
                    String::new()
                };
                println!("model:{said}{asked}  [{} tokens]", usage.total());
            }
            Event::Call {
                call,
                decision,
                result,
            } => {
                println!("  → {} {}", call.name, call.raw_arguments);
                match decision {
                    CallDecision::AwaitingApproval { approval } => {
                        println!("    waiting for a human: approval {approval}");
                    }
                    CallDecision::Refused { gate, reason } => {
                        println!("    refused by the {gate} gate: {reason}");
                    }
                    CallDecision::Ran { function, report } => {
                        let what = match &report.outcome {
                            Outcome::Ok { .. } => format!("ok: {}", result.content),
                            Outcome::ToolError { error } => format!("tool error: {error}"),
                            Outcome::Stopped { stop } => format!("stopped by the sandbox: {stop}"),
                            other => format!("ended as {}", other.kind()),
                        };
                        println!(
                            "    gates passed · {function} {what} · {} fuel · {:.1} ms",
                            report.usage.fuel,
                            report.usage.wall.as_secs_f64() * 1000.0
                        );
                        for denial in &report.denials {
                            println!("    denied inside the tool: {denial:?}");
                        }
                    }
                }
            }
        }
    }
    println!("answer: {}", report.answer);
    println!(
        "({:?} after {} turn(s), {} tokens)",
        report.status,
        report.turns,
        report.usage.total()
    );
}
