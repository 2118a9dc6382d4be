//! What MCP adds to a tool call, measured side by side in one process (release build):
//! `cargo bench -p harness-e2e --bench mcp`.
//!
//! - `host`: `Host::call` of a trivial function (the sandbox boundary alone);
//! - `gated`: the same call through `ToolGate::call`, the path every front end shares (the gates,
//!   the rate and audit records in the state file, the sandbox), at each `[state] durability`;
//! - `http`: an MCP `tools/call` (stateless 2026-07-28, JSON response) over loopback HTTP with
//!   keep-alive to `harness serve`'s server (`serve_listener`), through the same gate
//!   (durability `admissions`, the default, and `os`), the same call as `POST /v1/tools/…` (the
//!   same gate without MCP: what rmcp's handling costs), and `GET /healthz` on the same server
//!   for the floor of HTTP itself;
//! - `stdio`: the same call to a `harness mcp` process over its stdin/stdout (needs
//!   `target/release/harness`: `cargo build --release -p harness-cli` first; skipped otherwise).
//!
//! Each is run one call at a time (latency: p50, p99) and with 16 calls in flight (calls/s with
//! both cores busy). Prints a table; it is a load generator, not a criterion benchmark.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use harness_agent::calls::{Confirmation, ToolGate};
use harness_agent::config::Config;
use harness_agent::gates::{Admitted, Principal};
use harness_agent::guards::pii::PiiPolicy;
use harness_agent::models::ToolCall;
use harness_agent::routing::Route;
use harness_agent::state::{Durability, StateStore};
use harness_e2e::{PolicyFile, hostile};
use harness_sandbox::{CallContext, Host};
use tokio_util::sync::CancellationToken;

mod load;

use load::{CONCURRENT, IN_FLIGHT, SEQUENTIAL, micros, report};

fn main() {
    load::main(run());
}

async fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let path = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("hostile", &hostile(), "")
        .write(tmp.path());
    let config = Arc::new(Config::load(&path).unwrap());
    let host = Host::load(config.policy().clone()).unwrap();

    println!("| path | p50 | p99 | calls/s ({IN_FLIGHT} in flight) |");
    println!("| --- | --- | --- | --- |");
    report("host (Host::call)", host_call(host.clone())).await;
    for (name, durability) in [
        ("every-record", Durability::EveryRecord),
        ("admissions", Durability::Admissions),
        ("os", Durability::Os),
    ] {
        let data = tmp.path().join(format!("data-{name}"));
        let state = Arc::new(StateStore::open_with(&data, durability).unwrap());
        let gate = ToolGate::new(host.clone(), state, config.clone());
        report(
            &format!("gated (ToolGate::call), durability {name}"),
            gated_call(gate.clone()),
        )
        .await;
        if durability != Durability::EveryRecord {
            let (call, api, floor, stop) = http_call(gate).await;
            report(&format!("http (MCP tools/call), durability {name}"), call).await;
            report(
                &format!("http (POST /v1/tools, no MCP), durability {name}"),
                api,
            )
            .await;
            if durability == Durability::Os {
                report("http floor (GET /healthz, same server)", floor).await;
            }
            stop.cancel();
        }
    }
    stdio(&path).await;
}

fn principal() -> Principal {
    Principal {
        name: "bench".into(),
        roles: Default::default(),
    }
}

fn host_call(host: Host) -> impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static {
    let caller = CallContext::new("bench", "bench-run");
    move || {
        let (host, caller) = (host.clone(), caller.clone());
        Box::pin(async move {
            host.call("hostile.add", r#"{"a": 20, "b": 22}"#, &caller)
                .await
                .unwrap();
        })
    }
}

fn gated_call(gate: ToolGate) -> impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static {
    let route = Route {
        name: "bench".into(),
        tools: vec!["hostile".into()],
    };
    move || {
        let (gate, route) = (gate.clone(), route.clone());
        Box::pin(async move {
            let call = ToolCall {
                id: "c".into(),
                name: "hostile__add".into(),
                raw_arguments: r#"{"a": 20, "b": 22}"#.into(),
            };
            let ask = async |_: &Admitted| Confirmation::Refused {
                reason: "no tool here asks".into(),
            };
            gate.call(
                &route,
                &principal(),
                "bench",
                &call,
                &PiiPolicy::default(),
                ask,
            )
            .await
            .unwrap();
        })
    }
}

/// `harness serve`'s server on a loopback port, an MCP call to it, the same call through the
/// HTTP API, and a `GET /healthz` (the same client, connections and server without MCP or a
/// tool); cancel the token to stop it.
async fn http_call(
    gate: ToolGate,
) -> (
    impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static,
    impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static,
    impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static,
    CancellationToken,
) {
    let (bound, client, stop) = load::serve(gate).await;
    let url = format!("http://{bound}/mcp");
    let health = format!("http://{bound}/healthz");
    let api = {
        let (client, url) = (
            client.clone(),
            format!("http://{bound}/v1/tools/hostile/add"),
        );
        move || {
            let (client, url) = (client.clone(), url.clone());
            Box::pin(async move {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(r#"{"a": 20, "b": 22}"#)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                let text = response.text().await.unwrap();
                assert!(text.contains("\"ran\""), "{text}");
            }) as BoxFuture<'static, ()>
        }
    };
    let floor = {
        let client = client.clone();
        move || {
            let (client, health) = (client.clone(), health.clone());
            Box::pin(async move {
                let response = client.get(&health).send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
            }) as BoxFuture<'static, ()>
        }
    };
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hostile__add","arguments":{"a":20,"b":22},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}"#;
    let call = move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "hostile__add")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            let text = response.text().await.unwrap();
            assert!(text.contains("\"isError\":false"), "{text}");
        }) as BoxFuture<'static, ()>
    };
    (call, api, floor, stop)
}

/// `tools/call` over stdio to a `harness mcp` process: one at a time for latency, then 16
/// written before reading their answers for throughput.
async fn stdio(policy: &std::path::Path) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let binary = harness_e2e::repo_root().join("target/release/harness");
    if !load::selected("stdio") {
        return;
    }
    if !binary.is_file() {
        println!("| stdio | (build target/release/harness to measure) | | |");
        return;
    }
    let mut child = tokio::process::Command::new(binary)
        .args(["mcp", "--policy"])
        .arg(policy)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap()).lines();
    let hello = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
"#;
    input.write_all(hello.as_bytes()).await.unwrap();
    output.next_line().await.unwrap();
    let request = |id: usize| {
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"hostile__add\",\"arguments\":{{\"a\":20,\"b\":22}}}}}}\n"
        )
    };
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for id in 1..=SEQUENTIAL + 100 {
        let started = Instant::now();
        input.write_all(request(id).as_bytes()).await.unwrap();
        let line = output.next_line().await.unwrap().unwrap();
        assert!(line.contains("\"isError\":false"), "{line}");
        if id > 100 {
            latencies.push(started.elapsed());
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let started = Instant::now();
    let mut id = SEQUENTIAL + 100;
    for _ in 0..CONCURRENT / IN_FLIGHT {
        let mut batch = String::new();
        for _ in 0..IN_FLIGHT {
            id += 1;
            batch.push_str(&request(id));
        }
        input.write_all(batch.as_bytes()).await.unwrap();
        for _ in 0..IN_FLIGHT {
            output.next_line().await.unwrap().unwrap();
        }
    }
    let rate = CONCURRENT as f64 / started.elapsed().as_secs_f64();
    println!(
        "| stdio (MCP tools/call) | {} | {} | {rate:.0} |",
        micros(at(0.50)),
        micros(at(0.99))
    );
}
