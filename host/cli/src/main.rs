//! `harness`: a thin command line over the sandbox (`harness-sandbox`), the agent
//! (`harness-agent`) and the tool builder (`harness-build`). Each command lives in its own
//! module; [`exit`] lists every exit code.

mod agents;
mod approvals;
mod args;
mod audit;
mod audit_log;
mod build;
mod call;
mod eval;
mod exit;
mod load;
mod metrics;
mod run;
mod serve;
mod state;
mod supply;
mod switches;
mod telemetry;
mod tools;

use std::process::ExitCode;

use clap::Parser;
use harness_agent::state::records::Decision;

use args::{ApprovalsAction, AuditLogAction, BudgetAction, Cli, Command, KeysAction, StateAction};
use exit::Exit;
use load::{report, with_config, with_host, with_server};

fn main() -> ExitCode {
    let _telemetry = telemetry::init();
    ExitCode::from(dispatch(Cli::parse().command))
}

fn dispatch(command: Command) -> Exit {
    match command {
        Command::Check { policy } => with_host(&policy.path, |_, host| Ok(tools::check(&host))),
        Command::Tools { policy, json } => {
            with_host(&policy.path, |_, host| Ok(tools::list(&host, json)))
        }
        Command::Call {
            policy,
            function,
            arguments,
            principal,
            report,
        } => with_host(&policy.path, |_, host| {
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
        Command::Mcp {
            policy,
            principal,
            roles,
        } => with_server(&policy.path, |config, settings, host| {
            serve::mcp(config, settings, host, principal, roles)
        }),
        Command::Serve {
            policy,
            listen,
            grace,
        } => with_server(&policy.path, |config, settings, host| {
            serve::http(config, settings, host, listen, grace)
        }),
        Command::State {
            action: StateAction::Migrate { policy },
        } => with_config(&policy.path, state::migrate),
        Command::State {
            action: StateAction::Status { policy },
        } => with_config(&policy.path, state::status),
        Command::Keys {
            action: KeysAction::New { name },
        } => report(serve::new_key(&name)),
        Command::Keys {
            action:
                KeysAction::Signing {
                    name,
                    dir,
                    no_password,
                },
        } => report(supply::new_signing_key(&name, &dir, no_password)),
        Command::Sign {
            policy,
            tool,
            key,
            out,
        } => with_config(&policy.path, |config| {
            supply::sign(config.policy(), &tool, &key, out.as_deref())
        }),
        Command::Verify { policy, tools } => with_config(&policy.path, |config| {
            supply::verify(config.policy(), &tools)
        }),
        Command::Push {
            component,
            target,
            signature,
        } => report(supply::push(&component, &target, signature.as_deref())),
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
            with_host(&policy.path, |config, host| run::run(config, host, &args))
        }
        Command::Approvals { action } => match action {
            ApprovalsAction::List { policy, all } => {
                with_config(&policy.path, |config| approvals::list(config, all))
            }
            ApprovalsAction::Approve { policy, id, reason } => {
                with_host(&policy.path, |config, host| {
                    approvals::decide(config, host, id, Decision::Approved, &reason)
                })
            }
            ApprovalsAction::Deny { policy, id, reason } => {
                with_host(&policy.path, |config, host| {
                    approvals::decide(config, host, id, Decision::Denied, &reason)
                })
            }
        },
        Command::Metrics {
            policy,
            since,
            json,
        } => with_config(&policy.path, |config| metrics::show(config, since, json)),
        Command::Budget {
            action: BudgetAction::Show { policy },
        } => with_config(&policy.path, metrics::budgets),
        Command::Replay { policy, run_id } => {
            with_config(&policy.path, |config| eval::replay(config, &run_id))
        }
        Command::Eval {
            policy,
            dataset,
            agent,
            json,
        } => with_config(&policy.path, |config| {
            eval::eval(config, &dataset, agent.as_deref(), json)
        }),
        Command::Kill {
            policy,
            name,
            agent,
            reason,
        } => with_config(&policy.path, |config| {
            switches::flip(config, &name, agent, Some(&reason))
        }),
        Command::Enable {
            policy,
            name,
            agent,
        } => with_config(&policy.path, |config| {
            switches::flip(config, &name, agent, None)
        }),
        Command::AuditLog { action } => match action {
            AuditLogAction::Verify { policy, head } => with_config(&policy.path, |config| {
                audit_log::verify(config, head.as_deref())
            }),
            AuditLogAction::Head { policy } => with_config(&policy.path, audit_log::head),
        },
    }
}
