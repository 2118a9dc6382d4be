//! The call boundary against real adversarial components: every stop is named, and a normal
//! call keeps working while the attacks run.

use harness_e2e::{PolicyFile, hostile};
use harness_host::{CallContext, CallError, Host, Outcome, OutputKind, Policy, Stop};
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
