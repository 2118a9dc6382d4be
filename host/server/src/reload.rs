//! Reloading the whitelist while serving: on SIGHUP, and when the file changes. The new file is
//! parsed and every tool loaded (compiled if need be) before anything changes; if anything is
//! wrong, the old whitelist stays in service and the error, naming the file and the key, is
//! logged. Calls in flight finish on the version they began with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use harness_agent::calls::ToolGate;
use harness_agent::state::StateStore;
use harness_sandbox::Host;
use tokio_util::sync::CancellationToken;

use crate::McpServer;
use crate::settings;

/// How often the whitelist file is looked at.
pub const FILE_POLL: Duration = Duration::from_millis(500);

/// Reloads `path` into `server` on SIGHUP or when the file changes, until `stop`; the state
/// (`state`) stays the one the server started with.
pub async fn watch_whitelist(
    server: McpServer,
    path: PathBuf,
    state: Arc<StateStore>,
    stop: CancellationToken,
) {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = stamp(&path);
    loop {
        let hangup = async {
            match hangups.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let asked = tokio::select! {
            () = stop.cancelled() => return,
            () = hangup => true,
            () = tokio::time::sleep(FILE_POLL) => false,
        };
        let now = stamp(&path);
        if !asked && now == seen {
            continue;
        }
        seen = now;
        reload(&server, &path, &state).await;
    }
}

/// Loads `path` and, if all of it loads, serves it.
pub async fn reload(server: &McpServer, path: &std::path::Path, state: &Arc<StateStore>) {
    let loading = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let (config, settings) = settings::load(&path).map_err(|e| e.to_string())?;
            let host = Host::load(config.policy().clone()).map_err(|e| e.to_string())?;
            Ok::<_, String>((config, settings, host))
        })
    };
    match loading.await {
        Ok(Ok((config, settings, host))) => {
            let tools = host.tools().count();
            let gate = ToolGate::new(host, state.clone(), Arc::new(config));
            server.replace(gate, settings).await;
            server.metrics().reloaded(true);
            tracing::warn!(target: "harness::serve", file = %path.display(), tools, "whitelist reloaded");
        }
        Ok(Err(error)) => {
            server.metrics().reloaded(false);
            tracing::error!(
                target: "harness::serve",
                file = %path.display(),
                %error,
                "the whitelist was not reloaded; the one in service stays"
            );
        }
        Err(error) => {
            server.metrics().reloaded(false);
            tracing::error!(target: "harness::serve", %error, "reloading failed");
        }
    }
}

/// What changes when the file is written: its modification time and length.
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
