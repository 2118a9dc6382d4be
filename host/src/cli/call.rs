//! `harness call TOOL.FUNCTION 'JSON'`.

use std::process::ExitCode;

use harness_host::{CallContext, Host, Outcome, Stop};

/// Exit code: the tool returned its error.
const EXIT_TOOL_ERROR: u8 = 1;
/// Exit code: the call was refused before running.
const EXIT_REFUSED: u8 = 4;

/// Runs one call and prints its result (or the whole report) on stdout.
pub fn run(
    host: &Host,
    function: &str,
    arguments: &str,
    principal: &str,
    full_report: bool,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harness: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let caller = CallContext::new(principal, format!("cli-{}", std::process::id()));
    let report = match runtime.block_on(host.call(function, arguments, &caller)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("harness: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    if full_report {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialize")
        );
    }
    match &report.outcome {
        Outcome::Ok { value } => {
            if !full_report {
                println!("{value}");
            }
            ExitCode::SUCCESS
        }
        Outcome::ToolError { error } => {
            eprintln!("harness: {function} returned an error: {error}");
            ExitCode::from(EXIT_TOOL_ERROR)
        }
        Outcome::Stopped { stop } => {
            eprintln!("harness: {function} was stopped: {stop}");
            ExitCode::from(stop_exit_code(stop))
        }
    }
}

/// The documented exit code of each stop.
fn stop_exit_code(stop: &Stop) -> u8 {
    match stop {
        Stop::OutOfFuel { .. } => 10,
        Stop::TimedOut { .. } => 11,
        Stop::MemoryLimit { .. } => 12,
        Stop::StackOverflow => 13,
        Stop::OutputTooLarge { .. } => 14,
        Stop::Trap { .. } => 15,
        Stop::GrantUnavailable { .. } => 16,
    }
}
