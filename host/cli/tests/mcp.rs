//! `harness mcp` driven by the official MCP Python SDK (`tests/mcp/client.py`, from `.venv`):
//! the tools a client lists (names, schemas, annotations derived from the grants), and each way
//! a call can end — a result, a tool error, a sandbox stop, a refusal by a gate, invalid
//! arguments, an unknown tool — with every call in the audit chain.

use std::path::Path;
use std::process::Command;

use harness_agent::state::StateStore;
use harness_e2e::{PolicyFile, example_tool, hostile, repo_root};
use serde_json::{Value, json};

/// Runs the Python client with `actions` against `harness mcp` on `policy` for `principal`.
fn client(policy: &Path, principal: &str, roles: &[&str], actions: Value) -> Vec<Value> {
    let mut server = vec![
        env!("CARGO_BIN_EXE_harness").to_owned(),
        "mcp".into(),
        "--policy".into(),
        policy.display().to_string(),
        "--principal".into(),
        principal.into(),
    ];
    for role in roles {
        server.extend(["--role".to_owned(), (*role).to_owned()]);
    }
    let root = repo_root();
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/mcp/client.py"))
        .arg(actions.to_string())
        .args(&server)
        .output()
        .expect("the Python MCP client runs (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn an_mcp_client_lists_true_annotations_and_every_call_meets_the_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let kb = repo_root().join("tools/kb/sample");
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool(
            "kb",
            &example_tool("kb"),
            &format!(
                "fs = [{{ host = {:?}, guest = \"/kb\", mode = \"ro\" }}]",
                kb.display().to_string()
            ),
        )
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\nroles = [\"support\"]",
        )
        .tool(
            "weather",
            &example_tool("weather"),
            "http = [{ url = \"https://api.weather.example/v1\", methods = [\"GET\"] }]\n\
             env = { WEATHER_API = \"https://api.weather.example\" }",
        )
        .tool("hostile", &hostile(), "fuel = 2_000_000")
        .write(tmp.path());

    let seen = client(
        &policy,
        "ana",
        &[],
        json!([
            ["list"],
            ["call", "calc__apply", {"op": "mul", "a": 6, "b": 7}],
            ["call", "calc__apply", {"op": "div", "a": 1, "b": 0}],
            ["call", "hostile__spin", {}],
            ["call", "tickets__list", {}],
            ["call", "calc__apply", {"op": "mul", "a": "six", "b": 7}],
            ["call", "nothing__here", {}],
        ]),
    );

    let tools = seen[0]["tools"].as_array().unwrap();
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed: {tools:?}"))
    };
    let apply = tool("calc__apply");
    assert_eq!(
        apply["description"],
        "Apply `op` to `a` and `b`. Dividing by zero is an error."
    );
    assert_eq!(apply["input_schema"]["required"], json!(["op", "a", "b"]));
    assert_eq!(
        apply["output_schema"]["properties"]["result"]["type"],
        "number"
    );
    let hints = |name: &str| tool(name)["annotations"].clone();
    assert_eq!(
        hints("calc__apply"),
        json!({"title": apply["title"], "read_only": true, "destructive": false, "open_world": false})
    );
    assert_eq!(hints("kb__search")["read_only"], true, "read-only files");
    assert_eq!(
        hints("tickets__create")["read_only"],
        false,
        "key-value storage"
    );
    assert_eq!(hints("tickets__create")["destructive"], true);
    assert_eq!(hints("weather__current")["open_world"], true, "HTTP");
    assert_eq!(hints("weather__current")["read_only"], true, "GET only");

    assert_eq!(
        seen[1],
        json!({"is_error": false, "structured": {"result": 42.0}, "text": "42.0"})
    );
    assert_eq!(seen[2]["is_error"], true);
    assert!(
        seen[2]["text"].as_str().unwrap().contains("division"),
        "{}",
        seen[2]
    );
    assert_eq!(seen[3]["is_error"], true);
    assert!(
        seen[3]["text"]
            .as_str()
            .unwrap()
            .starts_with("the sandbox stopped the call: out of fuel"),
        "{}",
        seen[3]
    );
    assert_eq!(
        seen[4]["text"],
        "refused by the harness (role): `tickets` needs one of the roles support; ana has none"
    );
    assert!(
        seen[5]["exception"]
            .as_str()
            .unwrap()
            .contains("argument `a`: expected a number, found a string"),
        "{}",
        seen[5]
    );
    assert!(
        seen[6]["exception"]
            .as_str()
            .unwrap()
            .contains("there is no tool named `nothing__here`"),
        "{}",
        seen[6]
    );

    // A support principal may; every call is in the chain, which verifies.
    let support = client(
        &policy,
        "sam",
        &["support"],
        json!([["call", "tickets__list", {}]]),
    );
    assert_eq!(support[0]["is_error"], false, "{}", support[0]);
    let state = StateStore::open(&tmp.path().join("data")).unwrap();
    let verified = state.verify_audit(None).unwrap().unwrap();
    assert!(verified.records >= 8, "{verified:?}");
}
