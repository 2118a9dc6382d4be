//! The `harness` binary on real components: what each command prints and its exit code.

use std::path::{Path, PathBuf};

use harness_e2e::http_server::HttpServer;
use harness_e2e::{PolicyFile, c_fixture, example_tool, hostile, sha256_file};
use serde_json::Value;

mod common;

use common::Run;

fn harness(args: &[&str]) -> Run {
    common::harness(args, &[])
}

/// A whitelist with the hostile fixture and the calc tool; returns its path.
fn whitelist(dir: &Path) -> PathBuf {
    PolicyFile::new(&dir.join("cache"))
        .raw("[defaults]\nfuel = 20_000_000\ntimeout = \"2s\"\nmemory = \"32 MiB\"\nmax_output = \"64 KiB\"")
        .tool("hostile", &hostile(), "")
        .tool("slow", &hostile(), "fuel = 100_000_000_000\ntimeout = \"200ms\"")
        .tool("calc", &example_tool("calc"), "")
        .write(dir)
}

fn call(policy: &Path, function: &str, args: &str) -> Run {
    harness(&["call", "--policy", policy.to_str().unwrap(), function, args])
}

#[test]
fn check_lists_every_tool_and_function() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = whitelist(tmp.path());
    let run = harness(&["check", "--policy", policy.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "calc  sha256:{}",
            sha256_file(&example_tool("calc"))
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  calc.apply  "), "{}", run.stdout);
    assert!(
        run.stdout.contains("  hostile.add  Adds two numbers"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("ok: 3 tool(s) loaded\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_broken_whitelist_exits_3_naming_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("calc", &example_tool("calc"), "memory = \"lots\"")
        .write(tmp.path());
    let run = harness(&["check", "--policy", policy.to_str().unwrap()]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains(policy.to_str().unwrap()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("lots"), "{}", run.stderr);

    let run = harness(&["check", "--policy", "/nonexistent/harness.toml"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("/nonexistent/harness.toml"),
        "{}",
        run.stderr
    );

    let run = harness(&["check", "--frobnicate"]);
    assert_eq!(run.code, 2, "bad command line");
}

#[test]
fn tools_json_carries_names_and_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = whitelist(tmp.path());
    let run = harness(&["tools", "--json", "--policy", policy.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tools: Value = serde_json::from_str(&run.stdout).unwrap();
    let calc = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "calc")
        .expect("calc is listed");
    let apply = calc["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "apply")
        .expect("calc.apply is listed");
    assert_eq!(apply["qualified_name"], "calc__apply");
    assert_eq!(
        apply["parameters"]["properties"]["op"]["enum"],
        serde_json::json!(["add", "sub", "mul", "div"])
    );
    assert_eq!(
        apply["parameters"]["required"],
        serde_json::json!(["op", "a", "b"])
    );
}

#[test]
fn call_prints_json_and_exits_by_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = whitelist(tmp.path());

    let run = call(&policy, "calc.apply", r#"{"op": "mul", "a": 6, "b": 7}"#);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "42.0\n"),
        "{}",
        run.stderr
    );

    let run = call(&policy, "calc__apply", r#"{"op": "div", "a": 1, "b": 0}"#);
    assert_eq!(run.code, 1, "a tool error");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "harness: calc__apply returned an error: \"division-by-zero\"\n"
    );

    let run = call(&policy, "calc.apply", r#"{"op": "pow", "a": 1, "b": 0}"#);
    assert_eq!(run.code, 4, "refused: {}", run.stderr);
    assert!(
        run.stderr.contains("argument `op`: unknown case \"pow\""),
        "{}",
        run.stderr
    );

    let run = call(&policy, "nope.apply", "{}");
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("unknown tool `nope`"), "{}", run.stderr);

    for (function, args, code, says) in [
        ("hostile.spin", "{}", 10, "out of fuel"),
        ("slow.spin", "{}", 11, "timed out"),
        ("hostile.grow", "{}", 12, "memory"),
        ("hostile.recurse", "{}", 13, "stack"),
        ("hostile.big-string", r#"{"len": 1000000}"#, 14, "too large"),
        ("hostile.boom", "{}", 15, "unreachable"),
    ] {
        let run = call(&policy, function, args);
        assert_eq!(run.code, code, "{function}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{function}");
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{function}: one line: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .starts_with(&format!("harness: {function} was stopped: "))
                && run.stderr.contains(says),
            "{function}: {}",
            run.stderr
        );
    }
}

#[test]
fn call_report_and_audit_records() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = whitelist(tmp.path());
    let run = harness(&[
        "call",
        "--report",
        "--principal",
        "alice",
        "--policy",
        policy.to_str().unwrap(),
        "calc.apply",
        r#"{"op": "div", "a": 1, "b": 0}"#,
    ]);
    assert_eq!(run.code, 1);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["outcome"]["kind"], "tool_error");
    assert_eq!(report["logs"][0]["message"], "division by zero refused");
    assert!(report["usage"]["fuel"].as_u64().unwrap() > 0);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "call",
            "--principal",
            "alice",
            "--policy",
            policy.to_str().unwrap(),
        ])
        .args(["calc.apply", r#"{"op": "add", "a": 1, "b": 2}"#])
        .env("HARNESS_AUDIT", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let record: Value =
        serde_json::from_str(stderr.lines().last().expect("an audit line")).unwrap();
    let fields = &record["fields"];
    assert_eq!(fields["tool"], "calc", "{record}");
    assert_eq!(fields["function"], "apply", "{record}");
    assert_eq!(fields["principal"], "alice", "{record}");
    assert_eq!(fields["outcome"], "ok", "{record}");
    assert_eq!(
        fields["digest"],
        sha256_file(&example_tool("calc")),
        "{record}"
    );
}

#[test]
fn audit_shows_the_world_imports_functions_and_digest() {
    let calc = example_tool("calc");
    let run = harness(&["audit", calc.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["sha256"], sha256_file(&calc));
    assert!(
        report["wit"]
            .as_str()
            .unwrap()
            .contains("export apply: func(op: op, a: f64, b: f64) -> result<f64, calc-error>;"),
        "{report}"
    );
    let functions = report["functions"]["offered"].as_array().unwrap();
    assert_eq!(
        functions
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["apply", "sum", "range"]
    );
    assert!(
        report["imports"]["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("harness:tool/log")),
        "{report}"
    );
    assert_eq!(report["refused_imports"], serde_json::json!([]));

    let run = harness(&["audit", calc.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains(&format!("sha256:    {}", sha256_file(&calc))),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("imports by capability:"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  apply  "), "{}", run.stdout);

    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, "junk").unwrap();
    let run = harness(&["audit", junk.to_str().unwrap()]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("junk.wasm") && run.stderr.contains("not a WebAssembly file"),
        "{}",
        run.stderr
    );
}

#[test]
fn audit_reviews_a_component_against_its_grants() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("kb")).unwrap();
    let probe = harness_e2e::c_fixture("fsprobe");
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool(
            "probe",
            &probe,
            "fs = [{ host = \"kb\", guest = \"/kb\", mode = \"ro\" }]\nenv = { LANG = \"C\" }",
        )
        .tool("calc", &example_tool("calc"), "")
        .tool("strict-calc", &example_tool("calc"), "strict = true")
        .tool(
            "adder",
            &hostile(),
            "fs = [{ host = \"kb\", guest = \"/kb\", mode = \"rw\" }]",
        )
        .write(tmp.path());
    let audit = |component: &Path, tool: &str| -> (i32, Value) {
        let run = harness(&[
            "audit",
            component.to_str().unwrap(),
            "--json",
            "--deny-warnings",
            "--tool",
            tool,
            "--policy",
            policy.to_str().unwrap(),
        ]);
        let json: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        (run.code, json["review"].clone())
    };
    let verdicts = |review: &Value| -> Vec<(String, String)> {
        review["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["capability"].as_str().unwrap().to_owned(),
                    c["verdict"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let kb = tmp.path().canonicalize().unwrap().join("kb");

    let (code, review) = audit(&probe, "probe");
    assert_eq!(code, 0, "{review}");
    assert_eq!(
        verdicts(&review),
        [
            ("filesystem".into(), "granted".into()),
            ("cli".into(), "granted".into())
        ]
    );
    assert_eq!(
        review["risk"],
        format!("reads files under {}; sees environment LANG", kb.display())
    );

    // Imported but not granted is fail-closed, so it is no warning: Rust's std imports the
    // filesystem whether or not a tool uses it.
    let (code, review) = audit(&example_tool("calc"), "calc");
    assert_eq!(code, 0, "{review}");
    assert_eq!(
        verdicts(&review),
        [("filesystem".into(), "denied_at_runtime".into())]
    );
    assert_eq!(review["risk"], "pure");

    let (code, review) = audit(&example_tool("calc"), "strict-calc");
    assert_eq!(code, 5);
    assert_eq!(
        verdicts(&review),
        [("filesystem".into(), "strict_refusal".into())]
    );

    let (code, review) = audit(&hostile(), "adder");
    assert_eq!(code, 5);
    assert_eq!(
        verdicts(&review),
        [("filesystem".into(), "over_granted".into())]
    );
    assert_eq!(
        review["risk"],
        format!("writes files under {}", kb.display())
    );

    // The wrong file for a tool is a warning too, and an unknown tool is an error.
    let (code, review) = audit(&hostile(), "calc");
    assert_eq!(code, 5);
    assert_eq!(review["digest_matches"], false);
    let run = harness(&[
        "audit",
        probe.to_str().unwrap(),
        "--tool",
        "nope",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("no tool `nope`"), "{}", run.stderr);
}

#[test]
fn denied_capability_use_is_an_audit_record() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("net", &harness_e2e::c_fixture("netprobe"), "")
        .write(tmp.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "call",
            "--principal",
            "mallory",
            "--policy",
            policy.to_str().unwrap(),
        ])
        .args(["net.connect", r#"{"ip": [127, 0, 0, 1], "port": 9}"#])
        .env("HARNESS_AUDIT", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the tool reports the refusal");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let records: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let call = records
        .iter()
        .find(|r| r["fields"]["message"] == "tool call")
        .expect("a call record");
    assert_eq!(call["fields"]["denials"], 1, "{stderr}");
    let denied = records
        .iter()
        .find(|r| r["fields"]["message"] == "capability use denied")
        .expect("a denial record");
    let fields = &denied["fields"];
    assert_eq!(fields["tool"], "net", "{denied}");
    assert_eq!(fields["principal"], "mallory", "{denied}");
    assert_eq!(fields["capability"], "sockets", "{denied}");
    assert_eq!(fields["denied"], "create tcp socket", "{denied}");
}

#[test]
fn a_secret_never_reaches_output_logs_or_audit() {
    const SECRET: &str = "tok-9f8e7d6c5b4a";
    let echo = harness_e2e::http_server::HttpServer::start(|request| {
        harness_e2e::http_server::response(
            200,
            &[("x-echo", &request.head)],
            request.head.as_bytes(),
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let grants = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET"] }}]
           secrets = {{ "127.0.0.1" = {{ header = "x-api-key", value_from_env = "ECHO_TOKEN" }} }}"#,
        echo.port()
    );
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("echo", &harness_e2e::c_fixture("httpprobe"), &grants)
        .write(tmp.path());
    let args = serde_json::json!({
        "method": "GET", "scheme": "http", "authority": echo.addr().to_string(),
        "path": "/", "headers": [], "body": "",
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["call", "--report", "--policy", policy.to_str().unwrap()])
        .args(["echo.fetch", &args.to_string()])
        .env("HARNESS_AUDIT", "1")
        .env("ECHO_TOKEN", SECRET)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        echo.requests()[0].header("x-api-key"),
        Some(SECRET),
        "the host sent the secret"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let body = report["outcome"]["value"]["body"].as_str().unwrap();
    assert!(body.contains("x-api-key: [redacted]"), "{body}");
    assert!(
        !stdout.contains(SECRET),
        "the secret reached the output: {stdout}"
    );
    assert!(
        !stderr.contains(SECRET),
        "the secret reached the audit trail: {stderr}"
    );

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["check", "--policy", policy.to_str().unwrap()])
        .env_remove("ECHO_TOKEN")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(
        stderr.contains("secrets.\"127.0.0.1\".value_from_env")
            && stderr.contains("`ECHO_TOKEN` is not set"),
        "{stderr}"
    );
}

/// The target folder the Rust tools share, so a scaffolded Rust tool reuses compiled SDK crates.
fn guest_target() -> String {
    harness_e2e::repo_root()
        .join("target/guest")
        .display()
        .to_string()
}

#[test]
fn scaffolded_tools_build_and_pass_their_own_tests_in_every_language() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().display().to_string();
    for lang in ["rust", "python", "c"] {
        let name = format!("hello-{lang}");
        let run = harness(&["new", &name, "--lang", lang, "--dir", &parent]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let dir = tmp.path().join(&name).display().to_string();

        let run = harness(&["test", &dir, "--target-dir", &guest_target()]);
        assert_eq!(run.code, 0, "{lang}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            run.stdout,
            "  ok    greet {\"name\":\"Ada\"}\n  ok    greet {\"name\":\" \"}\n2 passed, 0 failed\n"
        );

        // `build` prints the entry that pins exactly the file it wrote.
        let run = harness(&["build", &dir, "--target-dir", &guest_target()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let entry: toml::Table = toml::from_str(&run.stdout).unwrap();
        let tool = &entry["tools"][&name];
        let component = PathBuf::from(tool["component"].as_str().unwrap());
        assert_eq!(tool["sha256"].as_str().unwrap(), sha256_file(&component));
        assert!(run.stderr.contains("built "), "{}", run.stderr);
    }
    let again = harness(&["new", "hello-c", "--lang", "c", "--dir", &parent]);
    assert_eq!(again.code, 6);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn a_failing_case_names_what_it_expected_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().display().to_string();
    assert_eq!(
        harness(&["new", "picky", "--lang", "c", "--dir", &parent]).code,
        0
    );
    let tests = tmp.path().join("picky/tests.toml");
    let text = std::fs::read_to_string(&tests).unwrap();
    std::fs::write(
        &tests,
        text.replace("ok = \"Hello, Ada!\"", "ok = \"Hi, Ada!\""),
    )
    .unwrap();
    let run = harness(&["test", &tmp.path().join("picky").display().to_string()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "  FAIL  greet {\"name\":\"Ada\"}: expected ok \"Hi, Ada!\", got ok \"Hello, Ada!\""
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("1 passed, 1 failed\n"));

    std::fs::write(&tests, "[[case]]\nfunction = \"greet\"\n").unwrap();
    let run = harness(&["test", &tmp.path().join("picky").display().to_string()]);
    assert_eq!(run.code, 6);
    assert!(
        run.stderr
            .contains("case 1 (greet) needs exactly one of `ok` and `error`"),
        "{}",
        run.stderr
    );
}

#[test]
fn audit_log_verify_reports_an_intact_chain_and_names_a_tampered_record() {
    use harness_agent::state::StateStore;
    use harness_agent::state::records::AuditRecord;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&data)
        .write(tmp.path());
    let policy = policy.to_str().unwrap();
    let store = StateStore::open(&data).unwrap();
    for i in 0..4 {
        store
            .append_audit(
                "run-1",
                AuditRecord::AnswerInvalid {
                    problem: format!("try {i}"),
                },
            )
            .unwrap();
    }
    let head = store.audit_head().unwrap();
    drop(store);

    let run = harness(&["audit-log", "verify", "--policy", policy]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("4 records, chain intact; head {head}")),
        "{}",
        run.stdout
    );
    let printed = harness(&["audit-log", "head", "--policy", policy]);
    assert_eq!(printed.stdout.trim(), head);

    let db = rusqlite::Connection::open(data.join("state.sqlite3")).unwrap();
    db.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
    let run = harness(&["audit-log", "verify", "--policy", policy, "--head", &head]);
    assert_eq!(run.code, 7);
    assert!(
        run.stdout.contains("TAMPERED: the log ends at"),
        "{}",
        run.stdout
    );
    db.execute("UPDATE audit SET kind = 'tool.refused' WHERE seq = 2", [])
        .unwrap();
    let run = harness(&["audit-log", "verify", "--policy", policy]);
    assert_eq!(run.code, 7);
    assert!(
        run.stdout
            .ends_with("TAMPERED: record 2 was edited: its content does not match its hash\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn run_prints_each_gate_decision_and_kill_acts_on_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .scripted_agent(
            tmp.path(),
            "helper",
            r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}]}
{"text": "6 × 7 = 42."}
"#,
            "",
        )
        .write(tmp.path());
    let policy = policy.to_str().unwrap();

    let run = harness(&[
        "run",
        "--policy",
        policy,
        "--principal",
        "ana",
        "What is 6 × 7?",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("· agent helper · ana []\nuser: What is 6 × 7?\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  → calc__apply {\"op\":\"mul\",\"a\":6,\"b\":7}\n    gates passed · calc.apply ok: 42.0 · "), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("answer: 6 × 7 = 42.\n(Answered after 2 turn(s), "),
        "{}",
        run.stdout
    );

    let kill = harness(&[
        "kill",
        "--policy",
        policy,
        "calc",
        "--reason",
        "wrong results",
    ]);
    assert_eq!(
        (kill.code, kill.stdout.as_str()),
        (0, "tool calc is switched off: wrong results\n")
    );
    let run = harness(&["run", "--policy", policy, "What is 6 × 7?"]);
    assert!(
        run.stdout.contains(
            "    refused by the kill_switch gate: the tool `calc` is switched off: wrong results\n"
        ),
        "{}",
        run.stdout
    );
    let enable = harness(&["enable", "--policy", policy, "calc"]);
    assert_eq!(enable.stdout, "tool calc is back in service\n");
    let unknown = harness(&["kill", "--policy", policy, "nope"]);
    assert_eq!(unknown.code, 6);
    assert!(
        unknown.stderr.contains("no [tools.nope]"),
        "{}",
        unknown.stderr
    );

    let verify = harness(&["audit-log", "verify", "--policy", policy]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    assert!(verify.stdout.contains("chain intact"));

    let metrics = harness(&["metrics", "--policy", policy, "--since", "1h"]);
    assert_eq!(metrics.code, 0, "{}", metrics.stderr);
    assert!(
        metrics
            .stdout
            .contains("tool calc.apply: 1 calls, 0 errors, "),
        "{}",
        metrics.stdout
    );
    assert!(
        metrics.stdout.contains("refused by kill_switch: 1\n"),
        "{}",
        metrics.stdout
    );
    assert!(
        metrics.stdout.contains(" 2 runs, 2 answered, "),
        "{}",
        metrics.stdout
    );
    let budget = harness(&["budget", "show", "--policy", policy]);
    assert_eq!(
        budget.stdout,
        "nothing spent against a budget in its current window\n"
    );
}

#[test]
fn the_golden_set_covers_every_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let root = harness_e2e::repo_root();
    let kb = root.join("tools/kb/sample").canonicalize().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "rate = \"3/min\"")
        .tool("kb", &example_tool("kb"), &format!("fs = [{{ host = {:?}, guest = \"/kb\", mode = \"ro\" }}]", kb.display().to_string()))
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\nroles = [\"support\"]\napproval = { when = { priority = [\"urgent\"] } }",
        )
        .tool("hostile", &hostile(), "fuel = 2_000_000")
        .tool("crunch", &example_tool("calc"), "fuel = 900_000_000_000")
        .tool("outsider", &example_tool("calc"), "")
        .scripted_agent(
            tmp.path(),
            "golden",
            "{\"text\": \"unused\"}\n",
            "tools = [\"calc\", \"kb\", \"tickets\", \"hostile\", \"crunch\"]\nmax_turns = 3\n\n\
             [budgets]\nuser_fuel = \"10000000000/day\"",
        )
        .write(tmp.path());
    let dataset = root.join("evals/golden.jsonl");
    let run = harness(&[
        "eval",
        dataset.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with(
            "15 cases: 15 passed, 0 failed · tool selection precision 1.00, recall 1.00\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        !tmp.path().join("data/state.sqlite3").exists(),
        "eval state is scratch"
    );

    // A case whose expectation does not hold fails the run, saying what differed.
    let wrong = tmp.path().join("wrong.jsonl");
    std::fs::write(
        &wrong,
        r#"{"name": "expects a refusal that does not happen", "input": "1+1", "responses": [{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 1}}]}, {"text": "2"}], "expect": {"refused": {"calc__apply": "role"}, "calls": []}}
"#,
    )
    .unwrap();
    let run = harness(&[
        "eval",
        wrong.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("FAIL  expects a refusal that does not happen: expected calls {}, ran {\"calc__apply\"}; expected calc__apply refused by role, it was not refused"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("precision 0.00, recall 1.00"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_paused_run_is_approved_from_another_process_and_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("tickets", &example_tool("tickets"), "kv = { quota = \"64 KiB\" }\napproval = \"required\"")
        .scripted_agent(
            tmp.path(),
            "helper",
            r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "VPN down", "body": "", "priority": "high"}}]}
{"text": "Ticket 1 is open."}
"#,
            "",
        )
        .write(tmp.path());
    let policy = policy.to_str().unwrap();

    let run = harness(&[
        "run",
        "--policy",
        policy,
        "--principal",
        "ana",
        "Open a ticket: VPN down.",
    ]);
    assert_eq!(run.code, 10, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("    waiting for a human: approval 1\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("answer: Paused: waiting for human approval of 1 (tickets.create)."),
        "{}",
        run.stdout
    );

    let list = harness(&["approvals", "list", "--policy", policy]);
    assert!(list.stdout.starts_with("1  pending  tickets.create {\"body\":\"\",\"priority\":\"high\",\"title\":\"VPN down\"}  for ana"), "{}", list.stdout);

    let approve = harness(&[
        "approvals",
        "approve",
        "--policy",
        policy,
        "1",
        "--reason",
        "on call",
    ]);
    assert_eq!(approve.code, 0, "{}{}", approve.stdout, approve.stderr);
    assert!(
        approve.stdout.contains(" resumed · agent helper · ana\n"),
        "{}",
        approve.stdout
    );
    assert!(
        approve
            .stdout
            .contains("    gates passed · tickets.create ok: {\"id\":1,"),
        "{}",
        approve.stdout
    );
    assert!(
        approve.stdout.contains("answer: Ticket 1 is open.\n"),
        "{}",
        approve.stdout
    );

    let again = harness(&[
        "approvals",
        "deny",
        "--policy",
        policy,
        "1",
        "--reason",
        "too late",
    ]);
    assert_eq!(again.code, 6);
    assert!(
        again.stderr.contains("approval 1 was already approved by"),
        "{}",
        again.stderr
    );
    assert_eq!(
        harness(&["approvals", "list", "--policy", policy]).stdout,
        "no pending approvals\n"
    );
    assert_eq!(
        harness(&["audit-log", "verify", "--policy", policy]).code,
        0
    );
}

#[test]
fn a_replay_repeats_no_side_effect_and_says_what_it_withheld() {
    let server = HttpServer::ok("pong");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool(
            "files",
            &c_fixture("fsprobe"),
            &format!(
                "fs = [{{ host = {:?}, guest = \"/out\", mode = \"rw\" }}]",
                out.display().to_string()
            ),
        )
        .tool(
            "web",
            &c_fixture("httpprobe"),
            &format!(
                "http = [{{ url = \"http://127.0.0.1:{}\", methods = [\"GET\"] }}]",
                server.port()
            ),
        )
        .scripted_agent(
            tmp.path(),
            "helper",
            &format!(
                r#"{{"calls": [{{"name": "files__write-file", "arguments": {{"path": "/out/note.txt", "data": "written once"}}}}, {{"name": "web__fetch", "arguments": {{"method": "GET", "scheme": "http", "authority": "{}", "path": "/ping", "headers": [], "body": ""}}}}]}}
{{"text": "Done."}}
"#,
                server.addr()
            ),
            "",
        )
        .write(tmp.path());
    let policy = policy.to_str().unwrap();

    let run = harness(&["run", "--policy", policy, "--json", "write and ping"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let run_id = report["run_id"].as_str().unwrap();
    let note = out.join("note.txt");
    let written = std::fs::metadata(&note).unwrap().modified().unwrap();
    assert_eq!(server.connections(), 1);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let replay = harness(&["replay", "--policy", policy, run_id]);
    assert!(
        replay
            .stdout
            .contains("replaying without side effects: files: /out read-only (granted read-write)"),
        "{}",
        replay.stdout
    );
    assert!(
        replay.stdout.contains(
            "replaying without side effects: web: no HTTP (granted: GET http://127.0.0.1:"
        ),
        "{}",
        replay.stdout
    );
    // The tools were denied this time, so the replay differs from the recording, and says so.
    assert_eq!(replay.code, 9, "{}{}", replay.stdout, replay.stderr);
    assert!(
        replay.stdout.contains("DIVERGED at call 1"),
        "{}",
        replay.stdout
    );
    assert_eq!(
        std::fs::metadata(&note).unwrap().modified().unwrap(),
        written,
        "the replay wrote the file again"
    );
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "written once");
    assert_eq!(
        server.connections(),
        1,
        "the replay reached the server again"
    );
}
