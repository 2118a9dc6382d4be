//! `harness mcp` and `harness serve`: the whitelist's tools to MCP clients, over stdio or
//! streamable HTTP, through the same gates as agent runs; `harness keys new` makes client keys.

use std::sync::Arc;

use anyhow::{Context, Result};
use harness_agent::calls::ToolGate;
use harness_agent::config::Config;
use harness_agent::gates::Principal;
use harness_sandbox::Host;
use harness_server::reload::watch_whitelist;
use harness_server::{McpServer, ServerSettings};
use tokio_util::sync::CancellationToken;

use crate::agents;
use crate::exit::Exit;

/// Serves MCP on stdin/stdout for `principal` with `roles` until the client hangs up,
/// reloading the whitelist when it changes.
pub fn mcp(
    config: &Config,
    settings: ServerSettings,
    host: Host,
    principal: String,
    roles: Vec<String>,
) -> Result<Exit> {
    let state = agents::state(config)?;
    let gate = ToolGate::new(host, state.clone(), Arc::new(config.clone()));
    let principal = Principal {
        name: principal,
        roles: roles.into_iter().collect(),
    };
    let server = McpServer::new(gate, settings, principal);
    crate::load::runtime()?.block_on(async {
        let stop = CancellationToken::new();
        let reloads = tokio::spawn(watch_whitelist(
            server.clone(),
            config.policy().path().to_owned(),
            state,
            stop.clone(),
        ));
        let served = harness_server::serve_stdio(server).await;
        stop.cancel();
        let _ = reloads.await;
        served
    })?;
    Ok(Exit::Success)
}

/// Serves MCP over HTTP on `listen` until Ctrl-C or SIGTERM; in-flight calls have `grace` to
/// finish.
pub fn http(
    config: &Config,
    settings: ServerSettings,
    host: Host,
    listen: std::net::SocketAddr,
    grace: std::time::Duration,
) -> Result<Exit> {
    let state = agents::state(config)?;
    let gate = ToolGate::new(host, state.clone(), Arc::new(config.clone()));
    let local = Principal {
        name: crate::args::default_user(),
        roles: Default::default(),
    };
    let server = McpServer::new(gate, settings, local);
    let shutdown = CancellationToken::new();
    crate::load::runtime()?.block_on(async {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
            }
            stop.cancel();
        });
        tokio::spawn(watch_whitelist(
            server.clone(),
            config.policy().path().to_owned(),
            state,
            shutdown.clone(),
        ));
        harness_server::http::refuse_open_access(&server, listen)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // The address bound (a port 0 becomes a real one), for whoever started the server.
        println!("listening on http://{}", listener.local_addr()?);
        harness_server::serve_listener(server, listener, shutdown, grace).await?;
        anyhow::Ok(())
    })?;
    Ok(Exit::Success)
}

/// `harness keys new NAME`: prints a new client key once, and the entry to paste.
pub fn new_key(name: &str) -> Result<Exit> {
    let (key, entry) = harness_server::settings::new_key(name)?;
    println!("key (shown once; give it to the client, store it nowhere else):\n{key}\n");
    println!("whitelist entry:\n{entry}");
    Ok(Exit::Success)
}
