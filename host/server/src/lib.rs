//! Harness's front ends over the agent's [`ToolGate`](harness_agent::calls::ToolGate): the MCP
//! server over stdio ([`serve_stdio`]) and, next to it, streamable HTTP.
//!
//! [`catalog`] turns the whitelist's functions into MCP tools (names, schemas, annotations
//! derived from the grants); [`mcp`] answers `tools/list` and `tools/call`.

pub mod catalog;
pub mod mcp;

pub use mcp::McpServer;

use rmcp::ServiceExt;

/// Serves MCP on this process's stdin and stdout until the client closes them. Nothing but MCP
/// messages goes to stdout.
pub async fn serve_stdio(server: McpServer) -> Result<(), ServeError> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError(e.to_string()))?;
    Ok(())
}

/// Why a server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("the MCP server stopped: {0}")]
pub struct ServeError(String);
