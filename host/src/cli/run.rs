//! `harness run`, `harness kill`, `harness enable`: an agent answering with sandboxed tools,
//! and the switches that take tools or agents out of service while it runs.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use harness_host::agent::gates::Principal;
use harness_host::agent::models::{self, retry::Resilient, retry::RetryPolicy};
use harness_host::agent::run::{Agent, CallDecision, Cancel, Event, RunReport, RunStatus};
use harness_host::agent::state::StateStore;
use harness_host::agent::state::switches::Target;
use harness_host::policy::AgentSettings;
use harness_host::{Host, Outcome, Policy};

/// Exit code: the run ended without the model's answer (turn limit, invalid arguments, no
/// model, agent switched off).
const EXIT_NO_ANSWER: u8 = 8;
/// Exit code: the run is paused, waiting for human approval.
const EXIT_PAUSED: u8 = 10;
/// Exit code: a replay diverged from the recorded run.
const EXIT_DIVERGED: u8 = 9;
/// Exit code: a golden-dataset case failed.
const EXIT_EVAL_FAILED: u8 = 1;

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
    let settings = choose_agent(policy, args.agent.as_deref())?;
    let model = connect_agent_model(policy, settings)?;
    let state = StateStore::open(&policy.host.data_dir)?;
    let principal = Principal {
        name: args.principal.clone(),
        roles: args.roles.iter().cloned().collect::<BTreeSet<_>>(),
    };
    let cancel = Cancel::new();
    let agent = Agent::new(host, &state, settings, model).with_cancel(cancel.clone());
    let runtime = super::runtime()?;
    let report = runtime.block_on(async {
        // Ctrl-C cancels the run cleanly: it ends recorded as cancelled.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        agent.run(&principal, &args.input).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_run(&settings.name, &principal, Some(&args.input), &report);
    }
    Ok(run_exit_code(report.status))
}

fn run_exit_code(status: RunStatus) -> ExitCode {
    match status {
        RunStatus::Answered => ExitCode::SUCCESS,
        RunStatus::Paused => ExitCode::from(EXIT_PAUSED),
        _ => ExitCode::from(EXIT_NO_ANSWER),
    }
}

/// `harness approvals list`.
pub fn approvals_list(policy: &Policy, all: bool) -> Result<ExitCode> {
    let state = StateStore::open(&policy.host.data_dir)?;
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
    Ok(ExitCode::SUCCESS)
}

/// `harness approvals approve|deny`: records the decision and, when it was the run's last
/// pending one, resumes the run here and prints the rest of it.
pub fn approvals_decide(
    policy: &Policy,
    host: &Host,
    id: i64,
    approved: bool,
    reason: &str,
) -> Result<ExitCode> {
    let state = StateStore::open(&policy.host.data_dir)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let decided = state.decide(id, approved, &who, reason)?;
    println!(
        "approval {id} ({} {}) {} by {who}",
        decided.function,
        decided.arguments,
        decided.decision.as_deref().unwrap_or_default()
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
        return Ok(ExitCode::SUCCESS);
    }
    let Some((agent, paused)) = state.paused_run(&decided.run_id)? else {
        println!(
            "run {} is not paused (it was resumed already)",
            decided.run_id
        );
        return Ok(ExitCode::SUCCESS);
    };
    let settings = policy.agents.get(&agent).with_context(|| {
        format!(
            "run {} belongs to agent `{agent}`, which {} no longer defines",
            decided.run_id,
            policy.path.display()
        )
    })?;
    let turns = serde_json::from_str::<serde_json::Value>(&paused)?["turns"]
        .as_u64()
        .unwrap_or(0);
    let model = agent_model(policy, settings, turns as usize)?;
    let runtime = super::runtime()?;
    let resumed =
        runtime.block_on(Agent::new(host, &state, settings, model).resume(&decided.run_id))?;
    match resumed {
        Some(report) => {
            let principal = Principal {
                name: decided.principal.clone(),
                roles: BTreeSet::new(),
            };
            print_run(&settings.name, &principal, None, &report);
            Ok(run_exit_code(report.status))
        }
        None => {
            println!("run {} was resumed by another process", decided.run_id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a run; `input` is `None` for the rest of a resumed run.
fn print_run(agent: &str, principal: &Principal, input: Option<&str>, report: &RunReport) {
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

/// `harness eval`: runs a golden dataset against an agent, with state in a scratch folder so
/// production audit logs, rates and budgets are untouched.
pub fn eval(
    policy: &Policy,
    dataset: &std::path::Path,
    agent: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let cases = harness_host::agent::eval::load(dataset)?;
    let settings = choose_agent(policy, agent)?;
    let Scratch { host, state, .. } = &Scratch::new(policy)?;
    let model = if cases.iter().all(|c| c.responses.is_some()) {
        None
    } else {
        Some(connect_agent_model(policy, settings)?)
    };
    let runtime = super::runtime()?;
    let report = runtime.block_on(harness_host::agent::eval::evaluate(
        host, state, settings, model, &cases,
    ))?;
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
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_EVAL_FAILED)
    })
}

/// `harness replay`: re-runs a recorded run with its recorded model responses, its tools
/// re-executed in a host with scratch state (so replaying cannot repeat a side effect), and
/// reports the first divergence.
pub fn replay(policy: &Policy, run_id: &str) -> Result<ExitCode> {
    let recorded = {
        let state = StateStore::open(&policy.host.data_dir)?;
        harness_host::agent::replay::recorded(&state, run_id)?
    };
    let settings = policy.agents.get(&recorded.agent).with_context(|| {
        format!(
            "run {run_id} used agent `{}`, which {} no longer defines",
            recorded.agent,
            policy.path.display()
        )
    })?;
    let Scratch { host, state, .. } = &Scratch::new(policy)?;
    let runtime = super::runtime()?;
    let report = runtime.block_on(harness_host::agent::replay::replay(
        host, state, settings, run_id, &recorded,
    ))?;
    match &report.divergence {
        None => {
            println!(
                "replayed {run_id} ({} model responses, {} tool calls): matched",
                recorded.responses.len(),
                report.compared
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(divergence) => {
            println!("replayed {run_id}: DIVERGED at {divergence}");
            Ok(ExitCode::from(EXIT_DIVERGED))
        }
    }
}

/// `harness metrics`: runs per prompt version, calls and errors per tool, refusals per gate.
pub fn metrics(policy: &Policy, window: std::time::Duration, json: bool) -> Result<ExitCode> {
    let state = StateStore::open(&policy.host.data_dir)?;
    let metrics = state.metrics(window)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("over the last {}:", humantime::format_duration(window));
    for p in &metrics.prompts {
        println!(
            "prompt {}: {} runs, {} answered, {} tokens",
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
    Ok(ExitCode::SUCCESS)
}

/// `harness budget show`: what each budget has spent in its current window, against its limit.
pub fn budget_show(policy: &Policy) -> Result<ExitCode> {
    let state = StateStore::open(&policy.host.data_dir)?;
    let Some(budgets) = policy.agents.values().next().map(|a| &a.budgets) else {
        bail!(
            "{} defines no agents, so no budgets apply",
            policy.path.display()
        );
    };
    let limits = [
        ("tokens:global", budgets.global_tokens),
        ("tokens:user:", budgets.user_tokens),
        ("fuel:user:", budgets.user_fuel),
    ];
    let mut shown = false;
    for (prefix, limit) in limits {
        let Some(limit) = limit else { continue };
        for (scope, spent) in state.spending(limit.per)? {
            if scope.starts_with(prefix) {
                println!(
                    "{scope}: {spent} of {} per {}",
                    limit.count,
                    humantime::format_duration(limit.per)
                );
                shown = true;
            }
        }
    }
    if !shown {
        println!("nothing spent against a budget in its current window");
    }
    Ok(ExitCode::SUCCESS)
}

/// A host and agent state over `policy` with a private, temporary data directory: where eval
/// and replay run, so production audit logs, rates, budgets and tool storage stay untouched.
struct Scratch {
    host: Host,
    state: StateStore,
    _dir: tempfile::TempDir,
}

impl Scratch {
    fn new(policy: &Policy) -> Result<Scratch> {
        let dir = tempfile::tempdir().context("creating a scratch folder")?;
        let mut policy = policy.clone();
        policy.host.data_dir = dir.path().join("data");
        Ok(Scratch {
            state: StateStore::open(&policy.host.data_dir)?,
            host: Host::load(policy)?,
            _dir: dir,
        })
    }
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

/// The agent named `name`, or the only one.
fn choose_agent<'p>(policy: &'p Policy, name: Option<&str>) -> Result<&'p AgentSettings> {
    match name {
        Some(name) => policy.agents.get(name).with_context(|| {
            format!(
                "no [agents.{name}] in {}; it has: {}",
                policy.path.display(),
                names(policy.agents.keys())
            )
        }),
        None => match policy.agents.values().collect::<Vec<_>>().as_slice() {
            [only] => Ok(only),
            [] => bail!("{} defines no [agents.NAME]", policy.path.display()),
            _ => bail!(
                "choose an agent with --agent: {}",
                names(policy.agents.keys())
            ),
        },
    }
}

/// The agent's model with its fallbacks, retried on transient errors; keys from the environment.
fn connect_agent_model(
    policy: &Policy,
    settings: &AgentSettings,
) -> Result<std::sync::Arc<dyn models::Model>> {
    agent_model(policy, settings, 0)
}

/// [`connect_agent_model`] for a run that already took `turns` model turns: a scripted primary
/// model continues after the responses those turns used.
fn agent_model(
    policy: &Policy,
    settings: &AgentSettings,
    turns: usize,
) -> Result<std::sync::Arc<dyn models::Model>> {
    let env = |name: &str| std::env::var(name).ok();
    let connect = |name: &String| models::connect(&policy.models[name], &env);
    let primary = &policy.models[&settings.model];
    let primary: std::sync::Arc<dyn models::Model> = match &primary.provider {
        harness_host::policy::Provider::Scripted { script } => std::sync::Arc::new(
            models::scripted::ScriptedModel::load(&primary.model, script)?.starting_at(turns),
        ),
        _ => connect(&settings.model)?,
    };
    Ok(std::sync::Arc::new(Resilient::new(
        primary,
        settings
            .fallbacks
            .iter()
            .map(connect)
            .collect::<Result<_, _>>()?,
        RetryPolicy::default(),
    )))
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.cloned().collect::<Vec<_>>().join(", ")
}
