//! Harness's front ends over the agent's [`ToolGate`](harness_agent::calls::ToolGate): the MCP
//! server over stdio ([`serve_stdio`]), and over HTTP ([`serve_listener`])
//! streamable MCP at `/mcp` beside the JSON [`api`] at `/v1`, every call through the same
//! gates and into the same audit chain.
//!
//! [`catalog`] turns the whitelist's functions into MCP tools (names, schemas, annotations
//! derived from the grants); [`mcp`] answers `tools/list` and `tools/call`; [`settings`] reads
//! `[clients]` and `[mcp]`; [`reload`] follows the whitelist file. A runnable example:
//! `cargo run -p harness-server --example serve`.

pub mod api;
pub mod catalog;
mod confirm;
mod console;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod reload;
mod runs;
pub mod settings;
mod trace;

pub use http::serve_listener;
pub use mcp::McpServer;
pub use settings::{ActFor, Client, ServerSettings};

use rmcp::ServiceExt;

/// Serves MCP on this process's stdin and stdout until the client closes them. Nothing but MCP
/// messages goes to stdout. The client is told when a kill switch changes the tool list.
pub async fn serve_stdio(server: McpServer) -> Result<(), ServeError> {
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move { server.watch_switches(stop).await })
    };
    let served = async {
        let running = server
            .clone()
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| ServeError(e.to_string()))?;
        // The one client of this process, whichever protocol era it speaks.
        server.add_peer(running.peer().clone());
        running
            .waiting()
            .await
            .map_err(|e| ServeError(e.to_string()))
    }
    .await;
    stop.cancel();
    let _ = watcher.await;
    server.finish_calls().await;
    served.map(|_| ())
}

/// Why a server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("the MCP server: {0}")]
pub struct ServeError(pub(crate) String);
