//! `harness mcp`: the whitelist's tools to an MCP client over stdio, through the same gates as
//! agent runs.

use std::sync::Arc;

use anyhow::Result;
use harness_agent::calls::ToolGate;
use harness_agent::config::Config;
use harness_agent::gates::Principal;
use harness_sandbox::Host;
use harness_server::McpServer;

use crate::agents;
use crate::exit::Exit;

/// Serves MCP on stdin/stdout for `principal` with `roles` until the client hangs up.
pub fn mcp(config: &Config, host: Host, principal: String, roles: Vec<String>) -> Result<Exit> {
    let gate = ToolGate::new(host, agents::state(config)?, Arc::new(config.clone()));
    let principal = Principal {
        name: principal,
        roles: roles.into_iter().collect(),
    };
    crate::load::runtime()?
        .block_on(harness_server::serve_stdio(McpServer::new(gate, principal)))?;
    Ok(Exit::Success)
}
