//! Three `harness serve` processes on one PostgreSQL database, as replicas behind a load
//! balancer: budgets, rates, kill switches, approvals and the audit chain hold across them.

mod common;

use std::time::{Duration, Instant};

use common::{Served, harness, http_client};
use harness_e2e::postgres::{Database, OwnServer, Postgres};
use harness_e2e::{PolicyFile, example_tool, hostile};
use serde_json::{Value, json};

const APP: &str = "hk_app-key-for-replica-tests";
const OPS: &str = "hk_ops-key-for-replica-tests";

/// Asks calc for 6 × 7, then answers: two model calls of 500 tokens each.
const CALC_SCRIPT: &str = r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}], "usage": {"input_tokens": 400, "output_tokens": 100}}
{"text": "6 × 7 = 42", "usage": {"input_tokens": 400, "output_tokens": 100}}
"#;

/// The replicas' shared whitelist (each keeps its compile cache and data directory apart): agent
/// `math` over calc, whose calls `ana` may make 40 times an hour; agent `clerk`, whose ticket
/// needs approval; 100,000 tokens a day for everyone together.
struct Cluster {
    _tmp: tempfile::TempDir,
    policy: std::path::PathBuf,
    db: Database,
    replicas: Vec<Served>,
}

impl Cluster {
    fn start(replicas: usize, extra: &str) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let sha = |key: &str| harness_sandbox::Sha256Digest::of(key.as_bytes()).to_string();
        let policy = PolicyFile::new(&tmp.path().join("cache"))
            .data_dir(&tmp.path().join("data"))
            .tool("calc", &example_tool("calc"), "rate = \"40/hour\"")
            .tool(
                "tickets",
                &example_tool("tickets"),
                "kv = { quota = \"64 KiB\" }\napproval = \"required\"",
            )
            .tool("desk", &example_tool("tickets"), "kv = { quota = \"1 KiB\" }")
            .tool("hostile", &hostile(), "fuel = 100_000_000_000\ntimeout = \"60s\"")
            .scripted_agent(tmp.path(), "math", CALC_SCRIPT, "max_output_tokens = 100")
            .scripted_agent(
                tmp.path(),
                "slow",
                r#"{"calls": [{"name": "hostile__spin", "arguments": {}}], "usage": {"input_tokens": 300, "output_tokens": 20}}
{"text": "The spinner stopped."}
"#,
                "",
            )
            .scripted_agent(
                tmp.path(),
                "clerk",
                r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "VPN down", "body": "", "priority": "high"}}]}
{"text": "Ticket 1 is open."}
"#,
                "",
            )
            .raw(&format!(
                "[budgets]\nglobal_tokens = \"100000/day\"\n\n\
                 [clients.app]\nkey_sha256 = \"{}\"\nroles = [\"support\", \"approver\"]\nact_for = true\nconcurrency = 256\n\n\
                 [clients.ops]\nkey_sha256 = \"{}\"\nroles = [\"operator\"]\n\n{extra}",
                sha(APP),
                sha(OPS),
            ))
            .write(tmp.path());
        let db = Postgres::get().database();
        let env = [("HARNESS_DATABASE_URL", db.url.as_str())];
        let policy_arg = policy.to_str().unwrap();

        let early = harness(
            &["serve", "--policy", policy_arg, "--listen", "127.0.0.1:0"],
            &env,
        );
        assert_ne!(early.code, 0, "{}", early.stdout);
        assert!(
            early.stderr.contains("run `harness state migrate` first")
                && !early.stderr.contains(&db.url),
            "{}",
            early.stderr
        );
        let migrated = harness(&["state", "migrate", "--policy", policy_arg], &env);
        assert_eq!(migrated.code, 0, "{}", migrated.stderr);
        assert!(
            migrated
                .stdout
                .contains("migrated the state schema from version 0 to"),
            "{}",
            migrated.stdout
        );
        assert!(
            !migrated.stdout.contains(&db.url),
            "the password is not shown"
        );

        let replicas = (0..replicas)
            .map(|_| Served::start_in(&policy, &[], &env))
            .collect();
        Cluster {
            _tmp: tmp,
            policy,
            db,
            replicas,
        }
    }

    fn ask(&self, replica: usize, method: &str, path: &str, who: &str, body: &str) -> (u16, Value) {
        let (status, body) = self.replicas[replica % self.replicas.len()].http(
            method,
            path,
            &format!("Authorization: Bearer {who}\r\n"),
            body,
        );
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
        };
        (status, body)
    }

    /// What `harness audit-log verify` says of the shared chain (which must verify).
    fn verify(&self) -> String {
        let env = [("HARNESS_DATABASE_URL", self.db.url.as_str())];
        let policy = self.policy.to_str().unwrap();
        let verified = harness(&["audit-log", "verify", "--policy", policy], &env);
        assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
        verified.stdout
    }

    /// A number the database holds.
    fn count(&self, sql: &str) -> i64 {
        self.db.psql(sql).parse().unwrap()
    }
}

#[test]
fn three_replicas_share_one_budget_one_rate_the_switches_and_one_audit_chain() {
    let cluster = Cluster::start(3, "");
    let statuses: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..30)
            .map(|client| {
                let cluster = &cluster;
                scope.spawn(move || {
                    (0..10)
                        .map(|run| {
                            let (status, report) = cluster.ask(
                                client + run,
                                "POST",
                                "/v1/runs",
                                APP,
                                r#"{"agent": "math", "input": "What is 6 times 7?", "principal": "ana"}"#,
                            );
                            assert_eq!(status, 200, "{report}");
                            report["status"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 300);
    assert!(
        statuses
            .iter()
            .all(|s| s == "answered" || s == "budget_exhausted"),
        "{statuses:?}"
    );

    let spent = cluster.count(
        "SELECT COALESCE(SUM(COALESCE(used, reserved)), 0) FROM ledger WHERE scope = 'tokens:global'",
    );
    assert!(spent <= 100_000, "spent {spent} of the 100,000 tokens");
    // A run reserves its prompt's size plus the output limit (a few thousand tokens) and
    // settles at what it used: only the last reservation's worth can be left unspent.
    assert!(
        spent > 90_000,
        "the budget was used up, not refused early: {spent}"
    );
    assert!(statuses.iter().any(|s| s == "budget_exhausted"));
    let admitted = cluster.count(
        "SELECT COUNT(*) FROM audit WHERE kind = 'tool.admitted' AND tool = 'calc' AND principal = 'ana'",
    );
    assert_eq!(
        admitted, 40,
        "the rate admits exactly 40 calls across the replicas"
    );
    let refused = cluster.count(
        "SELECT COUNT(*) FROM audit WHERE kind = 'tool.refused' AND record LIKE '%\"gate\":\"rate\"%'",
    );
    assert!(refused > 0, "later calls were refused by the rate");

    // A switch set through replica 1 refuses the next call on replicas 2 and 3.
    let (status, off) = cluster.ask(
        0,
        "PUT",
        "/v1/switches/tools/calc",
        OPS,
        r#"{"reason": "incident 7"}"#,
    );
    assert_eq!(status, 200, "{off}");
    for replica in [1, 2] {
        let (status, refused) = cluster.ask(
            replica,
            "POST",
            "/v1/tools/calc/apply",
            APP,
            r#"{"op": "add", "a": 1, "b": 2}"#,
        );
        assert_eq!(
            (status, &refused["gate"]),
            (503, &json!("kill_switch")),
            "replica {replica}: {refused}"
        );
    }
    let (status, listed) = cluster.ask(2, "GET", "/v1/tools", APP, "");
    assert_eq!(status, 200);
    assert!(
        !listed.to_string().contains("calc__apply"),
        "a killed tool leaves every replica's list: {listed}"
    );

    // An MCP client with a session on replica 3 hears of a switch flipped by another process.
    let harness_bin = env!("CARGO_BIN_EXE_harness");
    let policy_arg = cluster.policy.display().to_string();
    let enable = json!([harness_bin, "enable", "--policy", policy_arg, "calc"]);
    let seen = http_client(
        &cluster.replicas[2].url(),
        APP,
        "legacy",
        json!([
            ["list"],
            ["run", enable],
            ["await_list_changed", 5],
            ["list"]
        ]),
        &[("HARNESS_DATABASE_URL", cluster.db.url.as_str())],
    );
    assert_eq!(seen[2], json!({"list_changed": true}), "{seen:?}");
    assert!(seen[3].to_string().contains("calc__apply"), "{:?}", seen[3]);

    let verified = cluster.verify();
    let records = cluster.count("SELECT COUNT(*) FROM audit");
    assert!(
        verified.contains(&format!("{records} records")),
        "{verified}"
    );
}

#[test]
fn an_approval_decided_through_one_replica_resumes_a_run_paused_on_another_once() {
    let cluster = Cluster::start(3, "");
    let (status, paused) = cluster.ask(
        0,
        "POST",
        "/v1/runs",
        APP,
        r#"{"agent": "clerk", "input": "Open a ticket: VPN down.", "principal": "ana"}"#,
    );
    assert_eq!(
        (status, &paused["status"]),
        (200, &json!("paused")),
        "{paused}"
    );
    let run_id = paused["run_id"].as_str().unwrap().to_owned();
    let (_, pending) = cluster.ask(1, "GET", "/v1/approvals", APP, "");
    let approval = pending[0]["id"].as_i64().unwrap();

    // Two replicas decide at once: one decision is taken, and the run resumes once.
    let approve = format!("/v1/approvals/{approval}/approve");
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let tries: Vec<_> = [2, 1]
            .into_iter()
            .map(|replica| {
                let (cluster, approve) = (&cluster, &approve);
                scope.spawn(move || {
                    cluster.ask(replica, "POST", approve, APP, r#"{"reason": "ok"}"#)
                })
            })
            .collect();
        tries.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&409),
        "{answers:?}"
    );

    let started = Instant::now();
    let run = loop {
        let (status, run) = cluster.ask(0, "GET", &format!("/v1/runs/{run_id}"), APP, "");
        assert_eq!(status, 200, "{run}");
        if run["status"] == "answered" || started.elapsed() > Duration::from_secs(20) {
            break run;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(run["answer"], "Ticket 1 is open.", "{run}");
    let resumed = cluster.count(&format!(
        "SELECT COUNT(*) FROM audit WHERE run_id = '{run_id}' AND kind = 'run.resumed'"
    ));
    let called = cluster.count(&format!(
        "SELECT COUNT(*) FROM audit WHERE run_id = '{run_id}' AND kind = 'tool.called'"
    ));
    assert_eq!((resumed, called), (1, 1), "resumed and run exactly once");
}

#[test]
fn a_run_whose_replica_is_killed_mid_run_is_ended_by_another_once_its_records_intact() {
    let mut cluster = Cluster::start(2, "[state]\nrun_lease = \"1s\"\n");
    let (status, accepted) = cluster.ask(
        0,
        "POST",
        "/v1/runs",
        APP,
        r#"{"agent": "slow", "input": "Spin.", "principal": "ana", "wait": false}"#,
    );
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let admitted =
        format!("SELECT COUNT(*) FROM audit WHERE run_id = '{run_id}' AND kind = 'tool.admitted'");
    let started = Instant::now();
    while cluster.count(&admitted) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the spin never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: nothing of the replica runs on, not even its shutdown.
    let killed = cluster.replicas.remove(0);
    drop(killed);

    let started = Instant::now();
    let run = loop {
        let (status, run) = cluster.ask(0, "GET", &format!("/v1/runs/{run_id}"), APP, "");
        assert_eq!(status, 200, "{run}");
        if run["status"] != "running" || started.elapsed() > Duration::from_secs(20) {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["status"], "abandoned", "{run}");
    assert!(
        run["answer"]
            .as_str()
            .unwrap()
            .contains("its lease ran out"),
        "{run}"
    );
    let kinds: Vec<String> = cluster
        .db
        .psql(&format!(
            "SELECT kind FROM audit WHERE run_id = '{run_id}' ORDER BY seq"
        ))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        kinds,
        [
            "run.started",
            "run.routed",
            "model.responded",
            "tool.admitted",
            "run.ended"
        ],
        "what the killed replica committed is kept, and the run ended once"
    );
    assert_eq!(cluster.count("SELECT COUNT(*) FROM run_leases"), 0);
    cluster.verify();
}

#[test]
fn key_value_writes_from_tools_on_every_replica_respect_one_quota() {
    let cluster = Cluster::start(3, "");
    let body = "x".repeat(200);
    // Two tickets of about 350 bytes each, one after the other: the third does not fit in 1 KiB.
    for (replica, title) in [(0, "first"), (1, "second")] {
        let request = json!({"title": title, "body": body, "priority": "low"});
        let (status, answer) = cluster.ask(
            replica,
            "POST",
            "/v1/tools/desk/create",
            APP,
            &request.to_string(),
        );
        assert_eq!(
            (status, &answer["outcome"]["kind"]),
            (200, &json!("ok")),
            "{answer}"
        );
    }
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..60)
            .map(|i| {
                let (cluster, body) = (&cluster, &body);
                scope.spawn(move || {
                    let request =
                        json!({"title": format!("ticket {i}"), "body": body, "priority": "low"});
                    let (status, answer) = cluster.ask(
                        i,
                        "POST",
                        "/v1/tools/desk/create",
                        APP,
                        &request.to_string(),
                    );
                    assert_eq!(status, 200, "{answer}");
                    answer
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let refused = answers
        .iter()
        .filter(|a| a.to_string().contains("quota"))
        .count();
    assert!(
        refused > 0,
        "the quota stopped later writes: {}",
        answers[0]
    );
    let used = cluster.count("SELECT bytes FROM kv_usage WHERE tool = 'desk'");
    assert!(used <= 1024, "{used} bytes stored under a 1 KiB quota");
    let stored =
        cluster.count("SELECT SUM(length(key) + length(value)) FROM kv WHERE tool = 'desk'");
    assert_eq!(used, stored, "the usage row counts exactly what is stored");
}

#[test]
fn readyz_fails_while_the_database_does_not_answer_and_names_it_without_its_password() {
    let server = OwnServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .raw("[state]\nconnect_timeout = \"1s\"\n")
        .write(tmp.path());
    let env = [("HARNESS_DATABASE_URL", server.url.as_str())];
    let migrated = harness(
        &["state", "migrate", "--policy", policy.to_str().unwrap()],
        &env,
    );
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    let served = Served::start_in(&policy, &[], &env);

    server.stop();
    let started = Instant::now();
    let answer = loop {
        let answer = served.get("/readyz");
        if !answer.starts_with("HTTP/1.1 200") || started.elapsed() > Duration::from_secs(20) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let password = server.url.split(['@', ':']).nth(2).unwrap();
    let shown = server.url.replace(password, "***");
    assert!(
        answer.contains(&format!(
            "not ready: agent state: database {shown} is unreachable"
        )),
        "{answer}"
    );
    assert!(!answer.contains(password), "{answer}");
    assert_eq!(
        served.get("/healthz").split(' ').nth(1),
        Some("200"),
        "alive, not ready"
    );
}
