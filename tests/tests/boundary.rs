//! The call boundary against real adversarial components: every stop is named, and a normal
//! call keeps working while the attacks run.

use harness_e2e::{PolicyFile, c_fixture, hostile};
use harness_sandbox::StreamName;
use harness_sandbox::{CallContext, CallError, Host, Outcome, OutputKind, Policy, Stop};
use serde_json::json;

fn host(tmp: &tempfile::TempDir) -> Host {
    let hostile = hostile();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .raw("[defaults]\nfuel = 50_000_000\ntimeout = \"2s\"\nmemory = \"32 MiB\"\nmax_output = \"64 KiB\"")
        .tool("hostile", &hostile, "")
        .tool("slow", &hostile, "fuel = 100_000_000_000\ntimeout = \"300ms\"")
        .write(tmp.path());
    Host::load(Policy::load(policy).unwrap()).unwrap()
}

fn ctx() -> CallContext {
    CallContext::new("tester", "run-boundary")
}

async fn stop_of(host: &Host, name: &str, args: &str) -> Stop {
    match host.call(name, args, &ctx()).await.unwrap().outcome {
        Outcome::Stopped { stop } => stop,
        other => panic!("{name}: expected a stop, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stop_is_named_while_a_normal_call_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);

    let normal = {
        let host = host.clone();
        tokio::spawn(async move {
            let mut sums = Vec::new();
            for i in 0..50 {
                let report = host
                    .call("hostile.add", &format!(r#"{{"a": {i}, "b": 1}}"#), &ctx())
                    .await
                    .unwrap();
                sums.push(report.outcome);
                tokio::task::yield_now().await;
            }
            sums
        })
    };

    assert_eq!(
        stop_of(&host, "hostile.spin", "{}").await,
        Stop::OutOfFuel { limit: 50_000_000 }
    );
    assert_eq!(
        stop_of(&host, "hostile.fill", "{}").await,
        Stop::OutOfFuel { limit: 50_000_000 }
    );
    assert_eq!(
        stop_of(&host, "slow.spin", "{}").await,
        Stop::TimedOut {
            limit: std::time::Duration::from_millis(300)
        }
    );
    assert_eq!(
        stop_of(&host, "hostile.grow", "{}").await,
        Stop::MemoryLimit { limit: 32 << 20 }
    );
    assert_eq!(
        host.call("hostile.table-bomb", "{}", &ctx())
            .await
            .unwrap()
            .outcome,
        Outcome::Ok {
            value: json!(harness_sandbox::limits::MAX_TABLE_ELEMENTS)
        },
        "table growth is refused at the cap"
    );
    assert_eq!(
        stop_of(&host, "hostile.recurse", "{}").await,
        Stop::StackOverflow
    );
    assert_eq!(
        stop_of(&host, "hostile.big-string", r#"{"len": 1000000}"#).await,
        Stop::OutputTooLarge {
            what: OutputKind::Result,
            limit: 64 << 10
        }
    );
    assert_eq!(
        stop_of(&host, "hostile.big-list", r#"{"len": 4000000}"#).await,
        Stop::OutputTooLarge {
            what: OutputKind::Result,
            limit: 64 << 10
        }
    );
    match stop_of(&host, "hostile.boom", "{}").await {
        Stop::Trap { message } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }

    let sums = normal.await.unwrap();
    for (i, outcome) in sums.into_iter().enumerate() {
        assert_eq!(
            outcome,
            Outcome::Ok {
                value: json!(i + 1)
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    let report = host
        .call("hostile.big-string", r#"{"len": 100}"#, &ctx())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Ok {
            value: json!("\0".repeat(100))
        }
    );
    assert!(report.usage.fuel > 0);
    assert_eq!(
        report.usage.peak_memory,
        256 * 65536,
        "the fixture declares 256 pages"
    );
    assert_eq!(
        report.usage.output_bytes,
        serde_json::to_string(&"\0".repeat(100)).unwrap().len()
    );

    let report = host.call("hostile.spin", "{}", &ctx()).await.unwrap();
    assert_eq!(
        report.usage.fuel, 50_000_000,
        "a call that ran out used all its fuel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    let err = host.call("nope.add", "{}", &ctx()).await.unwrap_err();
    assert!(matches!(err, CallError::UnknownTool { .. }), "{err}");
    assert!(
        err.to_string().contains("hostile"),
        "lists the known tools: {err}"
    );

    let err = host.call("hostile.mul", "{}", &ctx()).await.unwrap_err();
    assert!(
        err.to_string().contains("no function `mul`") && err.to_string().contains("add"),
        "{err}"
    );

    let err = host
        .call("hostile.add", r#"{"a": 1}"#, &ctx())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "arguments of `add`: argument `b`: missing (required)"
    );

    let err = host
        .call("hostile.add", r#"{"a": 1, "b": 3000000000}"#, &ctx())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("argument `b`: out of range for s32"),
        "{err}"
    );

    let err = host
        .call("hostile.add", r#"{"a": 1, "b": "2"}"#, &ctx())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("argument `b`: expected an integer (s32), found a string"),
        "{err}"
    );

    let err = host
        .call("hostile.add", r#"{"a": 1, "b": 2, "c": 3}"#, &ctx())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("argument `c`: unknown key"),
        "{err}"
    );

    let err = host
        .call("hostile.add", "{not json", &ctx())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    let report = host
        .call("hostile__add", r#"{"a": 40, "b": 2}"#, &ctx())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Ok { value: json!(42) },
        "model-facing names resolve too"
    );
}

fn noisy_host(tmp: &tempfile::TempDir) -> Host {
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool(
            "noisy",
            &c_fixture("noisy"),
            "max_output = \"16 KiB\"\nfuel = 1_000_000_000\ntimeout = \"5s\"",
        )
        .write(tmp.path());
    Host::load(Policy::load(policy).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_captured_and_a_flood_is_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let host = noisy_host(&tmp);

    let report = host
        .call("noisy.say", r#"{"text": "hello"}"#, &ctx())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Ok { value: json!(6) });
    assert_eq!(report.stdout, "hello\n");
    assert_eq!(report.stderr, "");

    for (function, stream) in [
        ("noisy.flood-stdout", StreamName::Stdout),
        ("noisy.flood-stderr", StreamName::Stderr),
    ] {
        let report = host.call(function, "{}", &ctx()).await.unwrap();
        assert_eq!(
            report.outcome,
            Outcome::Stopped {
                stop: Stop::OutputTooLarge {
                    what: OutputKind::Stream(stream),
                    limit: 16 << 10
                }
            },
            "{function}"
        );
        let kept = match stream {
            StreamName::Stdout => &report.stdout,
            StreamName::Stderr => &report.stderr,
        };
        assert!(
            !kept.is_empty() && kept.len() <= 16 << 10 && kept.bytes().all(|b| b == b'x'),
            "{function}: keeps what fit, {} bytes",
            kept.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_spam_is_bounded_and_counted() {
    use harness_sandbox::limits::{
        MAX_LOG_BYTES as MAX_BYTES, MAX_LOG_LINE as MAX_LINE, MAX_LOG_LINES as MAX_LINES,
    };
    let tmp = tempfile::tempdir().unwrap();
    let host = noisy_host(&tmp);

    let report = host
        .call("noisy.spam-log", r#"{"count": 5000, "width": 10}"#, &ctx())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Ok { value: json!(null) });
    assert_eq!(report.logs.len(), MAX_LINES);
    assert_eq!(report.logs_dropped, 5000 - MAX_LINES as u64);
    assert!(
        report
            .logs
            .iter()
            .all(|l| l.level == "info" && l.message == "y".repeat(10))
    );

    let report = host
        .call(
            "noisy.spam-log",
            r#"{"count": 100, "width": 100000}"#,
            &ctx(),
        )
        .await
        .unwrap();
    assert!(
        report.logs.iter().all(|l| l.message.len() == MAX_LINE),
        "long lines are cut"
    );
    assert_eq!(report.logs.len(), MAX_BYTES / MAX_LINE);
    assert_eq!(report.logs_dropped, 100 - (MAX_BYTES / MAX_LINE) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_calls_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host(&tmp);
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move {
                host.call("hostile.add", &format!(r#"{{"a": {i}, "b": {i}}}"#), &ctx())
                    .await
                    .map(|r| r.outcome)
            })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(
            call.await.unwrap().unwrap(),
            Outcome::Ok {
                value: json!(2 * i)
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_pool_waits_instead_of_failing() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .raw("max_concurrency = 2")
        .tool(
            "hostile",
            &hostile(),
            "fuel = 1_000_000_000\ntimeout = \"30s\"",
        )
        .write(tmp.path());
    let policy = Policy::load(policy).unwrap();
    assert_eq!(
        policy.host().max_concurrency(),
        2,
        "the pool holds two instances"
    );
    let host = Host::load(policy).unwrap();

    let calls: Vec<_> = (0..40)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                host.call("hostile.work", r#"{"n": 2000000}"#, &ctx())
                    .await
                    .map(|r| r.outcome)
            })
        })
        .collect();
    for call in calls {
        assert_eq!(
            call.await.unwrap().unwrap(),
            Outcome::Ok {
                value: json!(2_000_000)
            }
        );
    }
}
