//! Agent runs over one PostgreSQL database shared by one and by three servers, against the
//! embedded SQLite on one, in one process (release build): `cargo bench -p harness-e2e --bench
//! replicas` (PostgreSQL: `HARNESS_TEST_POSTGRES`, else the shared test server of
//! `target/test-postgres`, started on first use).
//!
//! Each run is `POST /v1/runs` over loopback HTTP: one model turn asking for one tool call, the
//! call through the gates and the sandbox, a second turn answering (a scripted model, so the
//! figures are Harness's own). Every replica is a server of its own, with its own state pool
//! and its own tool host, on the one database; the load goes round-robin over them. Then the
//! audit chain's append rate, 16 appends in flight from one and from three state handles.
//! Prints a table; it is a load generator, not a criterion benchmark.

mod agent_runs;
mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use harness_agent::calls::ToolGate;
use harness_agent::state::records::{AuditRecord, ToolAdmitted};
use harness_agent::state::{StateStore, Target};
use harness_e2e::postgres::Postgres;
use harness_sandbox::Host;
use load::{IN_FLIGHT, report};

fn main() {
    load::main(run());
}

async fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = agent_runs::whitelist(tmp.path());
    let database = Postgres::get().database();
    let postgres = Target::postgres(&database.url).unwrap();
    StateStore::migrate(&postgres, config.db_options()).unwrap();
    let sqlite = Target::sqlite(tmp.path().join("state.sqlite3"));

    println!("| path | p50 | p99 | per second ({IN_FLIGHT} in flight) |");
    println!("| --- | --- | --- | --- |");
    for (name, target, replicas) in [
        ("SQLite, 1 server", &sqlite, 1),
        ("PostgreSQL, 1 server", &postgres, 1),
        ("PostgreSQL, 3 servers", &postgres, 3),
    ] {
        let mut servers = Vec::new();
        for _ in 0..replicas {
            let state = StateStore::open_target(target, config.db_options()).unwrap();
            let host = Host::load(config.policy().clone()).unwrap();
            let gate = ToolGate::new(host, Arc::new(state), config.clone());
            servers.push(load::serve(gate).await);
        }
        let urls: Arc<Vec<_>> = Arc::new(
            servers
                .iter()
                .map(|(bound, client, _)| (format!("http://{bound}/v1/runs"), client.clone()))
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        let run = move || {
            let (urls, next) = (urls.clone(), next.clone());
            Box::pin(async move {
                let (url, client) = &urls[next.fetch_add(1, Ordering::Relaxed) % urls.len()];
                agent_runs::post(client, url).await;
            }) as BoxFuture<'static, ()>
        };
        report(&format!("runs, {name}"), run).await;
        for (_, _, stop) in servers {
            stop.cancel();
        }
    }

    for (name, target, handles) in [
        ("SQLite, 1 handle", &sqlite, 1),
        ("PostgreSQL, 1 handle", &postgres, 1),
        ("PostgreSQL, 3 handles", &postgres, 3),
    ] {
        let stores: Arc<Vec<_>> = Arc::new(
            (0..handles)
                .map(|_| Arc::new(StateStore::open_target(target, config.db_options()).unwrap()))
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        let append = move || {
            let (stores, next) = (stores.clone(), next.clone());
            Box::pin(async move {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let store = stores[n % stores.len()].clone();
                tokio::task::spawn_blocking(move || {
                    let record = AuditRecord::ToolAdmitted(ToolAdmitted {
                        call_id: format!("c{n}"),
                        tool: "hostile".into(),
                        function: "hostile.add".into(),
                        principal: "bench".into(),
                    });
                    store.append_audit("bench", record).unwrap();
                })
                .await
                .unwrap();
            }) as BoxFuture<'static, ()>
        };
        report(&format!("audit append, {name}"), append).await;
    }
}
