//! What every command does first: read the whitelist (sandbox and agent parts in one pass),
//! load the tools, start the async runtime, and turn a failure into its exit code and message.

use std::path::Path;

use anyhow::Context as _;
use harness_agent::config::Config;
use harness_sandbox::{Host, LoadEvent};
use harness_server::ServerSettings;

use crate::exit::Exit;

/// Reads the whitelist and runs `command` on it; a failure of either is printed.
pub fn with_config(path: &Path, command: impl FnOnce(&Config) -> anyhow::Result<Exit>) -> Exit {
    with_settings(path, |config, _| command(config))
}

/// Reads the whitelist, the server's `[clients]` included, and runs `command` on it. Every
/// command reads the whole file, so a whitelist with tables for the server works everywhere.
pub fn with_settings(
    path: &Path,
    command: impl FnOnce(&Config, ServerSettings) -> anyhow::Result<Exit>,
) -> Exit {
    match harness_server::settings::load(path) {
        Ok((config, settings)) => report(command(&config, settings)),
        Err(e) => {
            eprintln!("harness: {e}");
            Exit::Load
        }
    }
}

/// Reads the whitelist, loads its tools (saying when one compiles), and runs `command`; a
/// whitelist or component that fails to load exits 3.
pub fn with_host(path: &Path, command: impl FnOnce(&Config, Host) -> anyhow::Result<Exit>) -> Exit {
    with_server(path, |config, _, host| command(config, host))
}

/// [`with_host`], with the server's settings too.
pub fn with_server(
    path: &Path,
    command: impl FnOnce(&Config, ServerSettings, Host) -> anyhow::Result<Exit>,
) -> Exit {
    with_settings(path, |config, settings| match load_host(config) {
        Ok(host) => command(config, settings, host),
        Err(e) => {
            eprintln!("harness: {e}");
            Ok(Exit::Load)
        }
    })
}

/// Loads `config`'s tools, printing a line for each one that must be compiled first.
fn load_host(config: &Config) -> Result<Host, harness_sandbox::LoadError> {
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

/// Tool `name` of `policy`, or an error naming the whitelist and the tools it has.
pub fn find_tool<'p>(
    policy: &'p harness_sandbox::Policy,
    name: &str,
) -> anyhow::Result<&'p harness_sandbox::policy::ToolPolicy> {
    policy.tools().get(name).with_context(|| {
        format!(
            "{}: no tool `{name}`; it has: {}",
            policy.path().display(),
            policy
                .tools()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
