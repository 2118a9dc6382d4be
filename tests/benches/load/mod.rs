//! The load generator the benches share: a call run one at a time (latency: p50, p99), then
//! with [`IN_FLIGHT`] in flight (calls/s with both cores busy), printed as a table row.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

/// Calls timed one at a time.
pub const SEQUENTIAL: usize = 2_000;
/// Calls made with [`IN_FLIGHT`] in flight.
pub const CONCURRENT: usize = 8_000;
/// Calls in flight at once for the throughput figure.
pub const IN_FLIGHT: usize = 16;

/// Runs a bench's `run` on two async workers (the cores CI has), on `cargo bench` only:
/// `cargo test --benches` builds and lists benches without running them.
pub fn main(run: impl Future<Output = ()>) {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run);
}

/// Warms up, then prints `| name | p50 | p99 | calls/s |`; skipped when `BENCH_ONLY` is set and
/// `name` does not contain it (to profile one row). With `BENCH_PAUSE_US` set, the machine idles
/// that long before each timed call, as a server does between requests that come one at a time.
pub async fn report(
    name: &str,
    call: impl Fn() -> BoxFuture<'static, ()> + Clone + Send + 'static,
) {
    if !selected(name) {
        return;
    }
    for _ in 0..100 {
        call().await;
    }
    let pause = pause();
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
        let started = Instant::now();
        call().await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];

    let started = Instant::now();
    let per_task = CONCURRENT / IN_FLIGHT;
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    call().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = (per_task * IN_FLIGHT) as f64 / started.elapsed().as_secs_f64();
    println!(
        "| {name} | {} | {} | {rate:.0} |",
        micros(at(0.50)),
        micros(at(0.99))
    );
}

/// The idle time before each timed call, from `BENCH_PAUSE_US` (microseconds).
fn pause() -> Option<Duration> {
    let micros = std::env::var("BENCH_PAUSE_US").ok()?;
    let micros = micros.parse().unwrap_or_else(|_| {
        panic!("BENCH_PAUSE_US={micros:?}: expected a whole number of microseconds")
    });
    Some(Duration::from_micros(micros))
}

/// Whether the row `name` is measured: every row, or those containing `BENCH_ONLY` when set.
pub fn selected(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

/// A duration in microseconds, one decimal.
pub fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// `harness serve`'s server over `gate` on a loopback port (the local user, no clients), a
/// client with keep-alive, and the token that stops the server.
pub async fn serve(
    gate: harness_agent::calls::ToolGate,
) -> (
    std::net::SocketAddr,
    reqwest::Client,
    tokio_util::sync::CancellationToken,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let local = harness_agent::gates::Principal {
        name: "bench".into(),
        roles: Default::default(),
    };
    let server = harness_server::McpServer::new(gate, Default::default(), local);
    tokio::spawn(harness_server::serve_listener(
        server,
        listener,
        stop.clone(),
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*harness_sandbox::tls::client_config()).clone())
        .build()
        .unwrap();
    (bound, client, stop)
}
