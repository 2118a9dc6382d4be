//! Agent runs through `POST /v1/runs` against the same runs through the library, in one
//! process (release build): `cargo bench -p harness-e2e --bench runs`.
//!
//! Each run is one model turn asking for one tool call, the call through the gates and the
//! sandbox, and a second turn answering, with a scripted model (so the figures are Harness's
//! own, not a provider's). A model is set up per run from its script, as `harness serve` does.
//!
//! - `library`: `Agent::run` over a `ToolGate`, at `[state] durability` `admissions` (the
//!   default) and `os`;
//! - `http`: `POST /v1/runs` (JSON report) over loopback HTTP with keep-alive to
//!   `harness serve`'s server (`serve_listener`) over the same gate.
//!
//! Each is run one at a time (latency: p50, p99) and with 16 runs in flight (runs/s with both
//! cores busy). Prints a table; it is a load generator, not a criterion benchmark.

mod agent_runs;
mod load;

use std::sync::Arc;

use futures::future::BoxFuture;
use harness_agent::calls::ToolGate;
use harness_agent::gates::Principal;
use harness_agent::models;
use harness_agent::run::{Agent, RunStatus};
use harness_agent::state::{Durability, StateStore};
use harness_sandbox::Host;
use load::{IN_FLIGHT, report};
use tokio_util::sync::CancellationToken;

fn main() {
    load::main(run());
}

async fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = agent_runs::whitelist(tmp.path());
    let host = Host::load(config.policy().clone()).unwrap();

    println!("| path | p50 | p99 | runs/s ({IN_FLIGHT} in flight) |");
    println!("| --- | --- | --- | --- |");
    for (name, durability) in [
        ("admissions", Durability::Admissions),
        ("os", Durability::Os),
    ] {
        let data = tmp.path().join(format!("data-{name}"));
        let state = Arc::new(StateStore::open_with(&data, durability).unwrap());
        let gate = ToolGate::new(host.clone(), state, config.clone());
        report(
            &format!("library (Agent::run), durability {name}"),
            library_run(gate.clone()),
        )
        .await;
        let (run, stop) = http_run(gate).await;
        report(&format!("http (POST /v1/runs), durability {name}"), run).await;
        stop.cancel();
    }
}

fn principal() -> Principal {
    Principal {
        name: "bench".into(),
        roles: Default::default(),
    }
}

fn library_run(gate: ToolGate) -> impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static {
    move || {
        let gate = gate.clone();
        Box::pin(async move {
            let settings = &gate.config().agents()["bench"];
            let model = models::for_agent(gate.config(), settings, 0, &|_| None).unwrap();
            let agent = Agent::over(gate, "bench", model).unwrap();
            let report = agent.run(&principal(), "What is 20 + 22?").await.unwrap();
            assert_eq!(report.status, RunStatus::Answered, "{}", report.answer);
        })
    }
}

/// `harness serve`'s server on a loopback port and a run through it; cancel the token to stop
/// it.
async fn http_run(
    gate: ToolGate,
) -> (
    impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static,
    CancellationToken,
) {
    let (bound, client, stop) = load::serve(gate).await;
    let url = format!("http://{bound}/v1/runs");
    let run = move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move { agent_runs::post(&client, &url).await }) as BoxFuture<'static, ()>
    };
    (run, stop)
}
