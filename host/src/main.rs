//! `harness`: check a whitelist, list tools, call one, or audit a component.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
