//! What every command does first: read the whitelist (sandbox and agent parts in one pass),
//! load the tools, start the async runtime, and turn a failure into its exit code and message.

use std::path::Path;

use anyhow::Context as _;
use harness_agent::config::Config;
use harness_sandbox::{Host, LoadEvent};

use crate::exit::Exit;

/// Reads the whitelist and runs `command` on it; a failure of either is printed.
pub fn with_config(path: &Path, command: impl FnOnce(&Config) -> anyhow::Result<Exit>) -> Exit {
    match Config::load(path) {
        Ok(config) => report(command(&config)),
        Err(e) => {
            eprintln!("harness: {e}");
            Exit::Load
        }
    }
}

/// Reads the whitelist, loads its tools (saying when one compiles), and runs `command`; a
/// whitelist or component that fails to load exits 3.
pub fn with_host(path: &Path, command: impl FnOnce(&Config, Host) -> anyhow::Result<Exit>) -> Exit {
    with_config(path, |config| match load_host(config) {
        Ok(host) => command(config, host),
        Err(e) => {
            eprintln!("harness: {e}");
            Ok(Exit::Load)
        }
    })
}

/// Loads `config`'s tools, printing a line for each one that must be compiled first.
pub fn load_host(config: &Config) -> Result<Host, harness_sandbox::LoadError> {
    Host::load_with_progress(config.policy().clone(), &mut |event| {
        if let LoadEvent::Compiling { tool, bytes } = event {
            eprintln!(
                "harness: compiling {tool} ({}), cached for next time…",
                bytesize::ByteSize(bytes as u64).display().iec()
            );
        }
    })
}

/// A multi-threaded async runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// Prints a failed command's error chain (exit 6); its exit otherwise.
pub fn report(result: anyhow::Result<Exit>) -> Exit {
    result.unwrap_or_else(|e| {
        eprintln!("harness: {e:#}");
        Exit::Error
    })
}
