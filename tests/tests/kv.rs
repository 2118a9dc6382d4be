//! Key-value grants against a real C tool using `harness:tool/kv` (tests/fixtures/c/kvprobe):
//! quotas and sizes, isolation between tools, durability across a host restart, exact accounting
//! under 100 concurrent writers, and denial without a grant.

use std::path::Path;

use harness_e2e::{PolicyFile, c_fixture};
use harness_sandbox::Capability;
use harness_sandbox::{CallContext, CallReport, Host, Outcome, Policy};
use serde_json::{Value, json};

/// A whitelist whose data directory is `dir/data`, with kvprobe as each of `tools`.
fn policy(dir: &Path, tools: &[(&str, &str)]) -> PolicyFile {
    let probe = c_fixture("kvprobe");
    tools.iter().fold(
        PolicyFile::new(&dir.join("cache")).data_dir(&dir.join("data")),
        |p, (name, grants)| p.tool(name, &probe, grants),
    )
}

fn load(dir: &Path, tools: &[(&str, &str)]) -> Host {
    let path = policy(dir, tools).write(dir);
    Host::load(Policy::load(path).unwrap()).unwrap()
}

async fn call(host: &Host, function: &str, args: Value) -> CallReport {
    host.call(
        function,
        &args.to_string(),
        &CallContext::new("tester", "run-kv"),
    )
    .await
    .unwrap()
}

async fn set(host: &Host, tool: &str, key: &str, value: &str) -> Result<(), String> {
    let report = call(
        host,
        &format!("{tool}.set"),
        json!({"key": key, "value": value}),
    )
    .await;
    match report.outcome {
        Outcome::Ok { .. } => Ok(()),
        Outcome::ToolError { error } => Err(error.as_str().unwrap().to_owned()),
        other => panic!("set {key}: {}", other.kind()),
    }
}

async fn value(host: &Host, function: &str, args: Value) -> Value {
    match call(host, function, args).await.outcome {
        Outcome::Ok { value } => value,
        other => panic!("{function}: {other:?}"),
    }
}

const QUOTA: &str = r#"kv = { quota = "4 KiB", max_keys = 3, max_value = "2 KiB" }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_within_their_quotas() {
    let tmp = tempfile::tempdir().unwrap();
    let host = load(tmp.path(), &[("store", QUOTA)]);

    set(&host, "store", "greeting", "hello").await.unwrap();
    assert_eq!(
        value(&host, "store.get", json!({"key": "greeting"})).await,
        "hello"
    );
    assert_eq!(
        value(&host, "store.get", json!({"key": "missing"})).await,
        Value::Null
    );

    let big = "v".repeat(2048 + 1);
    assert_eq!(
        set(&host, "store", "big", &big).await,
        Err("too-large".into())
    );
    let long_key = "k".repeat(1025);
    assert_eq!(
        set(&host, "store", &long_key, "x").await,
        Err("too-large".into())
    );

    let fill = "f".repeat(2048);
    set(&host, "store", "a", &fill).await.unwrap();
    assert_eq!(
        set(&host, "store", "b", &fill).await,
        Err("quota-exceeded".into()),
        "greeting + a + b is over 4 KiB"
    );
    set(&host, "store", "b", "small").await.unwrap();
    assert_eq!(
        set(&host, "store", "c", "x").await,
        Err("too-many-keys".into())
    );
    // Replacing a value reuses its space; deleting frees its key.
    set(&host, "store", "a", &"g".repeat(2000)).await.unwrap();
    assert_eq!(
        value(&host, "store.delete", json!({"key": "b"})).await,
        true
    );
    set(&host, "store", "c", "x").await.unwrap();
    assert_eq!(
        value(&host, "store.keys", json!({"prefix": ""})).await,
        json!(["a", "c", "greeting"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tool_sees_only_its_namespace_and_data_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let tools = [("alpha", QUOTA), ("beta", QUOTA)];
    {
        let host = load(tmp.path(), &tools);
        set(&host, "alpha", "secret-plan", "alpha only")
            .await
            .unwrap();
        assert_eq!(
            value(&host, "beta.get", json!({"key": "secret-plan"})).await,
            Value::Null
        );
        assert_eq!(
            value(&host, "beta.keys", json!({"prefix": ""})).await,
            json!([])
        );
        assert_eq!(
            value(&host, "beta.delete", json!({"key": "secret-plan"})).await,
            false
        );
    }
    let host = load(tmp.path(), &tools);
    assert_eq!(
        value(&host, "alpha.get", json!({"key": "secret-plan"})).await,
        "alpha only"
    );
    // Usage survived too: alpha's quota still counts the stored value.
    set(&host, "alpha", "a", &"x".repeat(2048)).await.unwrap();
    assert_eq!(
        set(&host, "alpha", "b", &"x".repeat(2048)).await,
        Err("quota-exceeded".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing_and_never_overspend() {
    let tmp = tempfile::tempdir().unwrap();
    let host = load(
        tmp.path(),
        &[
            ("roomy", r#"kv = { quota = "1 MiB", max_keys = 1000 }"#),
            ("tight", r#"kv = { quota = "1 MiB", max_keys = 40 }"#),
        ],
    );
    let host = std::sync::Arc::new(host);
    let writes: Vec<_> = (0..100)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move {
                let key = format!("key-{i:03}");
                (
                    set(&host, "roomy", &key, &format!("value {i}")).await,
                    set(&host, "tight", &key, "x").await,
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for write in writes {
        results.push(write.await.unwrap());
    }
    assert!(
        results.iter().all(|(roomy, _)| roomy.is_ok()),
        "{results:?}"
    );
    let tight_ok = results.iter().filter(|(_, t)| t.is_ok()).count();
    assert_eq!(tight_ok, 40, "exactly max_keys writes fit");
    assert!(
        results
            .iter()
            .all(|(_, t)| t.is_ok() || t.as_ref().is_err_and(|e| e == "too-many-keys"))
    );

    let keys = value(&host, "roomy.keys", json!({"prefix": "key-"})).await;
    assert_eq!(keys.as_array().unwrap().len(), 100);
    for i in [0, 57, 99] {
        assert_eq!(
            value(&host, "roomy.get", json!({"key": format!("key-{i:03}")})).await,
            format!("value {i}")
        );
    }
    let tight = value(&host, "tight.keys", json!({"prefix": ""})).await;
    assert_eq!(tight.as_array().unwrap().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grant_every_use_is_denied_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let host = load(tmp.path(), &[("nogrant", "")]);
    let report = call(&host, "nogrant.set", json!({"key": "k", "value": "v"})).await;
    assert!(matches!(&report.outcome, Outcome::ToolError { error } if error == "denied"));
    assert_eq!(report.denials.len(), 1);
    assert_eq!(report.denials[0].capability, Capability::KeyValue);
    assert_eq!(report.denials[0].target, "set \"k\"");
    assert!(
        !tmp.path().join("data").exists(),
        "no storage is created for a host without kv grants"
    );

    let strict = policy(tmp.path(), &[("nogrant", "strict = true")]).write(tmp.path());
    let error = Host::load(Policy::load(strict).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("harness:tool/kv"), "{error}");
}
