//! Benchmarks of the call boundary and of loading. Figures and how to read them: README,
//! "Performance". Run with `cargo bench -p harness-e2e --bench boundary`.
//!
//! - `call/boundary`: one trivial call through the whole boundary (JSON in, validation, a fresh
//!   metered store from the pool, the call, JSON out, the audit record).
//! - `call/bare_wasmtime`, `call/bare_wasmtime_pooling`: the same function of the same component
//!   with a plain wasmtime engine (default allocator, then the pooling allocator): a new store,
//!   instantiate from an `InstancePre`, a typed call. The floor we are measured against.
//! - `throughput/boundary_parallel`: batches of concurrent calls on a two-worker runtime.
//! - `load/*`: `Host::load` of a small and a large component, compiling (empty cache) or from the
//!   compile cache.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use harness_e2e::{PolicyFile, example_tool, hostile, large};
use harness_sandbox::{CallContext, Host, Outcome, Policy};
use wasmtime::component::{Component, Linker};

const ARGUMENTS: &str = r#"{"a": 20, "b": 22}"#;
/// Calls in flight per throughput iteration.
const BATCH: u64 = 512;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn whitelist(dir: &Path, cache: &Path, name: &str, component: &Path) -> Policy {
    let path = PolicyFile::new(cache).tool(name, component, "").write(dir);
    Policy::load(path).expect("the whitelist parses")
}

async fn add(host: &Host, caller: &CallContext) {
    let report = host
        .call("hostile.add", ARGUMENTS, caller)
        .await
        .expect("call accepted");
    assert!(
        matches!(report.outcome, Outcome::Ok { .. }),
        "{:?}",
        report.outcome
    );
}

fn calls(c: &mut Criterion) {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let component = hostile();
    let host = Host::load(whitelist(
        tmp.path(),
        &tmp.path().join("cache"),
        "hostile",
        &component,
    ))
    .expect("host loads");
    let caller = CallContext::new("bench", "bench-run");

    let mut group = c.benchmark_group("call");
    group.bench_function("boundary", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    add(&host, &caller).await;
                }
                start.elapsed()
            })
        })
    });

    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(64)
        .total_core_instances(64)
        .total_memories(64)
        .total_tables(64)
        .max_memory_size(16 << 20);
    let mut pooled = wasmtime::Config::new();
    pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    for (name, config) in [
        ("bare_wasmtime", wasmtime::Config::new()),
        ("bare_wasmtime_pooling", pooled),
    ] {
        let engine = wasmtime::Engine::new(&config).expect("bare engine");
        let bare = Component::from_file(&engine, &component).expect("bare compile");
        let pre = Linker::<()>::new(&engine)
            .instantiate_pre(&bare)
            .expect("bare link");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut store = wasmtime::Store::new(&engine, ());
                let instance = pre.instantiate(&mut store).unwrap();
                let add = instance
                    .get_typed_func::<(i32, i32), (i32,)>(&mut store, "add")
                    .unwrap();
                assert_eq!(add.call(&mut store, (20, 22)).unwrap(), (42,));
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("boundary_parallel", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut batch = tokio::task::JoinSet::new();
                    for _ in 0..BATCH {
                        let host = host.clone();
                        let caller = caller.clone();
                        batch.spawn(async move { add(&host, &caller).await });
                    }
                    while let Some(done) = batch.join_next().await {
                        done.expect("call task");
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn loads(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (label, component) in [
        ("small", hostile()),
        ("large", large()),
        ("python", example_tool("tickets-py")),
    ] {
        let size = bytesize::ByteSize(std::fs::metadata(&component).unwrap().len());
        let id = format!("{label} ({})", size.display().iec());
        let tmp = tempfile::tempdir().unwrap();

        group.bench_function(BenchmarkId::new("compile", &id), |b| {
            b.iter_batched(
                || {
                    let cache = tempfile::tempdir_in(tmp.path()).unwrap();
                    let policy = whitelist(tmp.path(), cache.path(), "tool", &component);
                    (cache, policy)
                },
                |(cache, policy)| {
                    let host = Host::load(policy).expect("host loads");
                    (cache, host)
                },
                BatchSize::PerIteration,
            )
        });

        let warm = tmp.path().join("warm");
        drop(Host::load(whitelist(tmp.path(), &warm, "tool", &component)).expect("warming"));
        group.bench_function(BenchmarkId::new("cached", &id), |b| {
            b.iter_batched(
                || whitelist(tmp.path(), &warm, "tool", &component),
                |policy| Host::load(policy).expect("host loads"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// A call into a Python tool (componentize-py): a fresh instance of an 18 MB component with the
/// interpreter pre-initialized, one storage read, and the result back.
fn python_calls(c: &mut Criterion) {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let path = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool(
            "tickets",
            &example_tool("tickets-py"),
            r#"kv = { quota = "1 MiB" }"#,
        )
        .write(tmp.path());
    let host = Host::load(Policy::load(path).expect("the whitelist parses")).expect("host loads");
    let caller = CallContext::new("bench", "bench-run");
    c.bench_function("call/python_tickets_list", |b| {
        b.iter(|| {
            let report = rt
                .block_on(host.call("tickets.list", r#"{"status": null}"#, &caller))
                .expect("call accepted");
            assert!(
                matches!(report.outcome, Outcome::Ok { .. }),
                "{:?}",
                report.outcome
            );
        })
    });
}

criterion_group!(benches, calls, python_calls, loads);
criterion_main!(benches);
