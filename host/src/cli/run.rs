//! `harness run`, `harness kill`, `harness enable`: an agent answering with sandboxed tools,
//! and the switches that take tools or agents out of service while it runs.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use harness_host::agent::gates::Principal;
use harness_host::agent::models::{self, retry::Resilient, retry::RetryPolicy};
use harness_host::agent::run::{Agent, CallDecision, Event, RunReport, RunStatus};
use harness_host::agent::state::StateStore;
use harness_host::agent::state::switches::Target;
use harness_host::{Host, Outcome, Policy};

/// Exit code: the run ended without the model's answer (turn limit, invalid arguments, no
/// model, agent switched off).
const EXIT_NO_ANSWER: u8 = 8;

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
pub fn run(policy: &Policy, host: &Host, args: &RunArgs) -> Result<ExitCode> {
    let settings = match &args.agent {
        Some(name) => policy.agents.get(name).with_context(|| {
            format!(
                "no [agents.{name}] in {}; it has: {}",
                policy.path.display(),
                names(policy.agents.keys())
            )
        })?,
        None => match policy.agents.values().collect::<Vec<_>>().as_slice() {
            [only] => only,
            [] => bail!("{} defines no [agents.NAME]", policy.path.display()),
            _ => bail!(
                "choose an agent with --agent: {}",
                names(policy.agents.keys())
            ),
        },
    };
    let env = |name: &str| std::env::var(name).ok();
    let connect = |name: &String| models::connect(&policy.models[name], &env);
    let model = Resilient::new(
        connect(&settings.model)?,
        settings
            .fallbacks
            .iter()
            .map(connect)
            .collect::<Result<_, _>>()?,
        RetryPolicy::default(),
    );
    let state = StateStore::open(&policy.host.data_dir)?;
    let principal = Principal {
        name: args.principal.clone(),
        roles: args.roles.iter().cloned().collect::<BTreeSet<_>>(),
    };
    let agent = Agent::new(host, &state, settings, std::sync::Arc::new(model));
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime.block_on(agent.run(&principal, &args.input))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_run(&settings.name, &principal, &args.input, &report);
    }
    Ok(match report.status {
        RunStatus::Answered => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_NO_ANSWER),
    })
}

fn print_run(agent: &str, principal: &Principal, input: &str, report: &RunReport) {
    let roles = principal
        .roles
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{} · agent {agent} · {} [{roles}]",
        report.run_id, principal.name
    );
    println!("user: {input}");
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
                    CallDecision::Refused { gate, reason } => {
                        println!("    refused by the {gate} gate: {reason}");
                    }
                    CallDecision::Ran { function, report } => {
                        let what = match &report.outcome {
                            Outcome::Ok { .. } => format!("ok: {}", result.content),
                            Outcome::ToolError { error } => format!("tool error: {error}"),
                            Outcome::Stopped { stop } => format!("stopped by the sandbox: {stop}"),
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

/// `harness kill` / `harness enable`: flips the switch of a tool or an agent.
pub fn switch(policy: &Policy, name: &str, agent: bool, kill: Option<&str>) -> Result<ExitCode> {
    let target = if agent {
        if !policy.agents.contains_key(name) {
            bail!("no [agents.{name}] in {}", policy.path.display());
        }
        Target::Agent(name.to_owned())
    } else {
        if !policy.tools.contains_key(name) {
            bail!("no [tools.{name}] in {}", policy.path.display());
        }
        Target::Tool(name.to_owned())
    };
    let state = StateStore::open(&policy.host.data_dir)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    match kill {
        Some(reason) => {
            state.kill(&target, reason, &who)?;
            println!("{target} is switched off: {reason}");
        }
        None if state.enable(&target, &who)? => println!("{target} is back in service"),
        None => println!("{target} was not switched off"),
    }
    Ok(ExitCode::SUCCESS)
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.cloned().collect::<Vec<_>>().join(", ")
}
