//! `harness call TOOL.FUNCTION 'JSON'`.

use harness_sandbox::{CallContext, Host, Outcome};

use crate::exit::Exit;

/// Runs one call and prints its result (or the whole report) on stdout.
pub fn run(
    host: &Host,
    function: &str,
    arguments: &str,
    principal: &str,
    full_report: bool,
) -> anyhow::Result<Exit> {
    let runtime = crate::load::runtime()?;
    let caller = CallContext::new(principal, format!("cli-{}", std::process::id()));
    let report = match runtime.block_on(host.call(function, arguments, &caller)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("harness: {e}");
            return Ok(Exit::Refused);
        }
    };
    if full_report {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(match &report.outcome {
        Outcome::Ok { value } => {
            if !full_report {
                println!("{value}");
            }
            Exit::Success
        }
        Outcome::ToolError { error } => {
            eprintln!("harness: {function} returned an error: {error}");
            Exit::Failed
        }
        Outcome::Stopped { stop } => {
            eprintln!("harness: {function} was stopped: {stop}");
            Exit::Stopped(stop.into())
        }
        other => {
            eprintln!("harness: {function} ended as {}", other.kind());
            Exit::Error
        }
    })
}
