//! The `harness` command line.
//!
//! Exit codes (stable; scripts may rely on them):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the tool returned an error (`err` of its `result`); `test`: a case failed |
//! | 2 | bad command line |
//! | 3 | the whitelist or a component could not be loaded |
//! | 4 | the call was refused: unknown tool or function, invalid arguments |
//! | 5 | `audit --deny-warnings`: the review found warnings |
//! | 6 | `new`, `build`, `test`: the tool could not be created, built or loaded; `audit-log`: the state could not be read |
//! | 7 | `audit-log verify`: the chain is broken (edited, inserted, deleted or reordered records) |
//! | 8 | `run`: the run ended without the model's answer (turn limit, budget, input rejected, ...) |
//! | 9 | `replay`: the replay diverged from the recorded run |
//! | 10 | `run`, `approvals approve/deny`: the run is paused, waiting for human approval |
//! | 10 | stopped: out of fuel |
//! | 11 | stopped: timed out |
//! | 12 | stopped: memory limit |
//! | 13 | stopped: stack overflow |
//! | 14 | stopped: output too large |
//! | 15 | stopped: the tool trapped |
//! | 16 | stopped: a granted capability (e.g. a directory) is unavailable |

mod audit;
mod audit_log;
mod build;
mod call;
mod run;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness_host::{Host, LoadEvent, Policy};

/// Run WebAssembly tools for AI agents, sandboxed and metered.
#[derive(Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the whitelist and every component; list each tool and its functions.
    Check {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
    },
    /// List tools, functions, descriptions and JSON Schemas.
    Tools {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// Print JSON (one object with every tool) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Call TOOL.FUNCTION with JSON arguments; print the result as JSON.
    Call {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// `tool.function`, e.g. `calc.eval`.
        function: String,
        /// The arguments as a JSON object, e.g. '{"expression": "1 + 2"}'.
        #[arg(default_value = "{}")]
        arguments: String,
        /// The principal the call runs for.
        #[arg(long, default_value = "cli")]
        principal: String,
        /// Print the whole report (outcome, usage, stdout, stderr, logs) as JSON.
        #[arg(long)]
        report: bool,
    },
    /// Show a component's WIT world, imports by capability, functions with schemas, and sha256;
    /// with --tool, also review its imports against what the whitelist grants it.
    Audit {
        /// The component file.
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Review the component as this whitelisted tool.
        #[arg(long)]
        tool: Option<String>,
        /// The whitelist holding --tool.
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE, requires = "tool")]
        policy: PathBuf,
        /// Exit with code 5 when the review has warnings (for CI gates).
        #[arg(long, requires = "tool")]
        deny_warnings: bool,
    },
    /// Run an agent on a question: the model proposes tool calls, every call passes the gates and
    /// the sandbox; prints the conversation with each decision.
    Run {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The agent (`[agents.NAME]`); may be omitted when there is one.
        #[arg(long)]
        agent: Option<String>,
        /// Who the run acts for.
        #[arg(long, default_value = "cli")]
        principal: String,
        /// A role of the principal (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
        /// The question.
        input: String,
    },
    /// List pending approvals, or approve or deny one (the last decision of a paused run resumes
    /// it here).
    Approvals {
        #[command(subcommand)]
        action: ApprovalsAction,
    },
    /// Runs per prompt version, calls and errors per tool, refusals per gate, from the audit log.
    Metrics {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// How far back, e.g. `1h`, `7days`.
        #[arg(long, default_value = "1day", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What each budget has spent in its current window.
    Budget {
        #[command(subcommand)]
        action: BudgetAction,
    },
    /// Re-run a recorded run with its recorded model responses and compare each tool call;
    /// exit 9 at the first divergence.
    Replay {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The run's id (`run-…`, printed by `harness run`).
        run_id: String,
    },
    /// Run a golden dataset (JSON Lines of cases) against an agent; exit 1 if a case fails.
    Eval {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The dataset.
        dataset: PathBuf,
        /// The agent (`[agents.NAME]`); may be omitted when there is one.
        #[arg(long)]
        agent: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Switch a tool (or, with --agent, an agent) off, effective for the next call of any
    /// running host.
    Kill {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The tool or agent name.
        name: String,
        /// NAME is an agent.
        #[arg(long)]
        agent: bool,
        /// Why (recorded, and told to the model).
        #[arg(long, default_value = "switched off by an operator")]
        reason: String,
    },
    /// Put a switched-off tool (or agent) back in service.
    Enable {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The tool or agent name.
        name: String,
        /// NAME is an agent.
        #[arg(long)]
        agent: bool,
    },
    /// Check the agent's hash-chained audit log, or print its head to anchor elsewhere.
    AuditLog {
        #[command(subcommand)]
        action: AuditLogAction,
    },
    /// Create a tool: WIT world, source, README and tests.toml, ready to build.
    New {
        /// The tool's name: lower-case words joined by hyphens.
        name: String,
        /// rust, python or c.
        #[arg(long, value_parser = build::parse_language, default_value = "rust")]
        lang: harness_build::project::Language,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build the tool in DIR into a component; print its whitelist entry with its sha256.
    Build {
        /// The tool's folder (with wit/ and Cargo.toml, app.py or *.c).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the component (default DIR/target/NAME.wasm).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Cargo's target folder for Rust tools (share one between tools to build faster).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Build the tool in DIR and run the cases of its tests.toml through the sandbox.
    Test {
        /// The tool's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Cargo's target folder for Rust tools.
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
}

/// What `harness budget` does.
#[derive(Subcommand)]
enum BudgetAction {
    /// Spending per budget scope against its limit.
    Show {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
    },
}

/// What `harness approvals` does.
#[derive(Subcommand)]
enum ApprovalsAction {
    /// Pending approvals (with --all, decided ones too).
    List {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// Include decided approvals.
        #[arg(long)]
        all: bool,
    },
    /// Approve a call; the run resumes when nothing else is pending.
    Approve {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The approval's number.
        id: i64,
        /// Why (recorded).
        #[arg(long, default_value = "approved")]
        reason: String,
    },
    /// Deny a call; the model is told, and the run resumes when nothing else is pending.
    Deny {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The approval's number.
        id: i64,
        /// Why (recorded, and told to the model).
        #[arg(long)]
        reason: String,
    },
}

/// What `harness audit-log` does.
#[derive(Subcommand)]
enum AuditLogAction {
    /// Walk the whole chain; exit 7 naming the first broken record.
    Verify {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
        /// The head recorded earlier (from `audit-log head`): also detects a cut-off end.
        #[arg(long)]
        head: Option<String>,
    },
    /// Print the hash of the last record.
    Head {
        #[arg(long, default_value = harness_host::policy::DEFAULT_POLICY_FILE)]
        policy: PathBuf,
    },
}

/// Exit code: the whitelist or a component could not be loaded.
pub const EXIT_LOAD: u8 = 3;

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { policy } => with_host(&policy, |host| tools::check(&host)),
        Command::Tools { policy, json } => with_host(&policy, |host| tools::list(&host, json)),
        Command::Call {
            policy,
            function,
            arguments,
            principal,
            report,
        } => with_host(&policy, |host| {
            call::run(&host, &function, &arguments, &principal, report)
        }),
        Command::Audit {
            component,
            json,
            tool,
            policy,
            deny_warnings,
        } => {
            let review_as = tool.map(|tool| audit::ReviewAs {
                policy,
                tool,
                deny_warnings,
            });
            audit::run(&component, json, review_as.as_ref())
        }
        Command::New { name, lang, dir } => report(build::new(&name, lang, &dir)),
        Command::Build {
            dir,
            output,
            target_dir,
        } => report(build::build(&dir, output.as_deref(), target_dir.as_deref())),
        Command::Test { dir, target_dir } => report(build::test(&dir, target_dir.as_deref())),
        Command::Run {
            policy,
            agent,
            principal,
            roles,
            json,
            input,
        } => {
            let args = run::RunArgs {
                agent,
                principal,
                roles,
                json,
                input,
            };
            with_policy_and_host(&policy, |policy, host| {
                report(run::run(policy, &host, &args))
            })
        }
        Command::Approvals { action } => match action {
            ApprovalsAction::List { policy, all } => {
                with_policy(&policy, |p| run::approvals_list(p, all))
            }
            ApprovalsAction::Approve { policy, id, reason } => {
                with_policy_and_host(&policy, |p, host| {
                    report(run::approvals_decide(p, &host, id, true, &reason))
                })
            }
            ApprovalsAction::Deny { policy, id, reason } => {
                with_policy_and_host(&policy, |p, host| {
                    report(run::approvals_decide(p, &host, id, false, &reason))
                })
            }
        },
        Command::Metrics {
            policy,
            since,
            json,
        } => with_policy(&policy, |p| run::metrics(p, since, json)),
        Command::Budget {
            action: BudgetAction::Show { policy },
        } => with_policy(&policy, run::budget_show),
        Command::Replay { policy, run_id } => with_policy(&policy, |p| run::replay(p, &run_id)),
        Command::Eval {
            policy,
            dataset,
            agent,
            json,
        } => with_policy(&policy, |p| run::eval(p, &dataset, agent.as_deref(), json)),
        Command::Kill {
            policy,
            name,
            agent,
            reason,
        } => with_policy(&policy, |p| run::switch(p, &name, agent, Some(&reason))),
        Command::Enable {
            policy,
            name,
            agent,
        } => with_policy(&policy, |p| run::switch(p, &name, agent, None)),
        Command::AuditLog { action } => match action {
            AuditLogAction::Verify { policy, head } => {
                with_policy(&policy, |p| audit_log::verify(p, head.as_deref()))
            }
            AuditLogAction::Head { policy } => with_policy(&policy, audit_log::head),
        },
    }
}

/// Exit code: a tool could not be created or built, or state could not be read.
const EXIT_BUILD: u8 = 6;

/// Loads the whitelist and runs `command` on it, reporting either's error.
fn with_policy(
    path: &std::path::Path,
    command: impl FnOnce(&Policy) -> anyhow::Result<ExitCode>,
) -> ExitCode {
    report(
        Policy::load(path)
            .map_err(anyhow::Error::from)
            .and_then(|p| command(&p)),
    )
}

/// A multi-threaded async runtime for one command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// Prints a failed command's error chain; its exit code otherwise.
fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("harness: {e:#}");
        ExitCode::from(EXIT_BUILD)
    })
}

/// Audit records go to stderr as JSON lines when `HARNESS_AUDIT=1`; other logs follow `RUST_LOG`.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let default = if std::env::var_os("HARNESS_AUDIT").is_some() {
        "warn,harness::audit=info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

fn with_host(policy: &std::path::Path, run: impl FnOnce(Host) -> ExitCode) -> ExitCode {
    with_policy_and_host(policy, |_, host| run(host))
}

/// Loads the whitelist and a host over it, or exits 3 saying why.
fn with_policy_and_host(
    policy: &std::path::Path,
    run: impl FnOnce(&Policy, Host) -> ExitCode,
) -> ExitCode {
    let loaded = Policy::load(policy)
        .map_err(harness_host::LoadError::from)
        .and_then(|p| {
            let kept = p.clone();
            Host::load_with_progress(p, &mut |event| {
                if let LoadEvent::Compiling { tool, bytes } = event {
                    eprintln!(
                        "harness: compiling {tool} ({}), cached for next time…",
                        bytesize::ByteSize(bytes as u64).display().iec()
                    );
                }
            })
            .map(|host| (kept, host))
        });
    match loaded {
        Ok((policy, host)) => run(&policy, host),
        Err(e) => {
            eprintln!("harness: {e}");
            ExitCode::from(EXIT_LOAD)
        }
    }
}
