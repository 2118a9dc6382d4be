//! `harness mcp` driven by the official MCP Python SDK (`tests/mcp/client.py`, from `.venv`):
//! the tools a client lists (names, schemas, annotations derived from the grants), and each way
//! a call can end — a result, a tool error, a sandbox stop, a refusal by a gate, invalid
//! arguments, an unknown tool — with every call in the audit chain.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Served, http_client, python_client};
use harness_agent::state::StateStore;
use harness_e2e::{PolicyFile, example_tool, hostile, repo_root};
use serde_json::{Value, json};

/// Runs the Python client with `actions` against `harness mcp` on `policy` for `principal`, in
/// the SDK's `auto` mode (the newest era both sides speak).
fn client(policy: &Path, principal: &str, roles: &[&str], actions: Value) -> Vec<Value> {
    client_in("auto", None, policy, principal, roles, actions)
}

/// [`client`] in `mode` (`auto`, `legacy` or `2026-07-28`), declaring form elicitation when
/// `confirm` says how its user answers (`accept`, `decline`, `cancel`).
fn client_in(
    mode: &str,
    confirm: Option<&str>,
    policy: &Path,
    principal: &str,
    roles: &[&str],
    actions: Value,
) -> Vec<Value> {
    let policy = policy.display().to_string();
    let mut server = vec![
        env!("CARGO_BIN_EXE_harness"),
        "mcp",
        "--policy",
        &policy,
        "--principal",
        principal,
    ];
    for role in roles {
        server.extend(["--role", role]);
    }
    let mut env = vec![("HARNESS_MCP_MODE", mode)];
    if let Some(answer) = confirm {
        env.push(("HARNESS_MCP_CONFIRM", answer));
    }
    python_client(actions, &server, &env)
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

#[test]
fn http_clients_authenticate_with_keys_in_both_protocol_eras() {
    const DESK: &str = "hk_desk-key-for-tests";
    const VIEWER: &str = "hk_viewer-key-for-tests";
    let tmp = tempfile::tempdir().unwrap();
    let sha = |key: &str| harness_sandbox::Sha256Digest::of(key.as_bytes()).to_string();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\nroles = [\"support\"]",
        )
        .raw(&format!(
            "[clients.desk]\nkey_sha256 = \"{}\"\nroles = [\"support\"]\n\n\
             [clients.viewer]\nkey_sha256 = \"{}\"\nprincipal = \"vera\"\n",
            sha(DESK),
            sha(VIEWER)
        ))
        .write(tmp.path());
    let served = Served::start(&policy);

    assert!(served.get("/healthz").starts_with("HTTP/1.1 200"));
    let actions = json!([
        ["call", "calc__apply", {"op": "add", "a": 1, "b": 2}],
        ["call", "tickets__list", {}],
    ]);
    for mode in ["legacy", "2026-07-28"] {
        let desk = http_client(&served.url(), DESK, mode, actions.clone(), &[]);
        assert_eq!(desk[0]["structured"], json!({"result": 3.0}), "{mode}");
        assert_eq!(desk[1]["is_error"], false, "{mode}: {}", desk[1]);
        let viewer = http_client(&served.url(), VIEWER, mode, actions.clone(), &[]);
        assert_eq!(
            viewer[1]["text"],
            "refused by the harness (role): `tickets` needs one of the roles support; vera has none",
            "{mode}"
        );
    }

    let no_key = served.ping("");
    assert!(no_key.starts_with("HTTP/1.1 401"), "{no_key}");
    assert!(
        no_key
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{no_key}"
    );
    let wrong = served.ping("Authorization: Bearer hk_guessed\r\n");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let foreign = served.ping(&format!(
        "Authorization: Bearer {DESK}\r\nOrigin: http://evil.example\r\n"
    ));
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    // A 2026-07-28 exchange in raw JSON-RPC: no initialize, no session, the protocol in `_meta`;
    // from a local browser origin.
    let stateless = served.post(
        &format!(
            "Authorization: Bearer {DESK}\r\nOrigin: http://localhost:3000\r\n\
             MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n"
        ),
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}"#,
    );
    assert!(stateless.starts_with("HTTP/1.1 200"), "{stateless}");
    assert!(stateless.contains("\"calc__apply\""), "{stateless}");
    assert!(
        !stateless.to_ascii_lowercase().contains("mcp-session-id"),
        "no session: {stateless}"
    );

    // Who called is in the chain: the desk client's calls ran for its principal.
    drop(served);
    let state = StateStore::open(&tmp.path().join("data")).unwrap();
    assert!(state.verify_audit(None).unwrap().is_ok());
}

/// A client that never finishes its headers (slowloris) loses its connection after
/// `HEADER_READ` (10 s), and others are served meanwhile.
#[test]
fn a_client_slow_to_send_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("hostile", &hostile(), "")
        .write(tmp.path());
    let served = Served::start(&policy);
    let mut slow = std::net::TcpStream::connect(served.addr).unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    assert!(served.get("/healthz").starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    assert!(read.is_ok(), "closed, not timed out on our side: {read:?}");
    let waited = started.elapsed();
    assert!(
        (9..20).contains(&waited.as_secs()),
        "cut off after about 10 s, not {waited:?}"
    );
}

#[test]
fn serve_refuses_a_public_address_without_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("calc", &example_tool("calc"), "")
        .write(tmp.path());
    let run = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["serve", "--policy"])
        .arg(&policy)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(6));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "0.0.0.0:0 is not a loopback address, and the whitelist declares no [clients]"
        ),
        "{stderr}"
    );
}

#[test]
fn the_mcp_conformance_suite_passes_for_a_tools_server() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .write(tmp.path());
    let served = Served::start(&policy);
    let bin = repo_root().join(".npm-tools/node_modules/.bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The scenarios that apply to a server offering tools only (see the README's MCP section).
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "dns-rebinding-protection",
    ] {
        let run = Command::new(bin.join("conformance"))
            .args(["server", "--url", &served.url(), "--scenario", scenario])
            .env("PATH", &path)
            .output()
            .expect("the conformance suite runs (scripts/setup.sh installs it)");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && stdout.contains(" 0 failed"),
            "{scenario}: {stdout}{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn a_kill_switch_from_another_process_reaches_a_connected_client() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool("kb", &example_tool("kb"), "")
        .write(tmp.path());
    let harness = env!("CARGO_BIN_EXE_harness");
    let policy_arg = policy.display().to_string();
    let kill = json!([
        harness, "kill", "--policy", policy_arg, "calc", "--reason", "recalled"
    ]);
    let enable = json!([harness, "enable", "--policy", policy_arg, "calc"]);
    let actions = json!([
        ["list"],
        ["run", kill],
        ["await_list_changed", 5],
        ["list"],
        ["call", "calc__apply", {"op": "add", "a": 1, "b": 1}],
        ["run", enable],
        ["await_list_changed", 5],
    ]);
    let legacy = client_in("legacy", None, &policy, "ana", &[], actions.clone());
    assert_eq!(
        legacy[2],
        json!({"list_changed": true}),
        "legacy: {legacy:?}"
    );
    assert_eq!(
        legacy[6],
        json!({"list_changed": true}),
        "legacy: {legacy:?}"
    );
    let seen = client(&policy, "ana", &[], actions);
    let names = |listed: &Value| -> Vec<String> {
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names(&seen[0]).contains(&"calc__apply".to_owned()));
    assert_eq!(seen[1], json!({"exit": 0}));
    assert_eq!(seen[2], json!({"list_changed": true}), "no notification");
    assert!(
        names(&seen[3]).iter().all(|n| !n.starts_with("calc__")),
        "{:?}",
        seen[3]
    );
    assert_eq!(
        seen[4]["text"],
        "refused by the harness (kill_switch): the tool `calc` is switched off: recalled"
    );
}

#[test]
fn an_approval_gated_call_runs_once_after_a_person_approves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\napproval = { when = { priority = [\"urgent\"] } }\nrate = \"20/min\"",
        )
        .write(tmp.path());
    let harness = env!("CARGO_BIN_EXE_harness");
    let policy_arg = policy.display().to_string();
    let decide = |verdict: &str, id: &str| {
        json!([
            harness,
            "approvals",
            verdict,
            "--policy",
            policy_arg,
            id,
            "--reason",
            "checked"
        ])
    };
    let urgent = json!({"title": "VPN down", "body": "", "priority": "urgent"});
    let reordered = json!({"priority": "urgent", "body": "", "title": "VPN down"});
    let seen = client(
        &policy,
        "ana",
        &[],
        json!([
            ["call", "tickets__create", urgent],
            ["call", "tickets__create", urgent],
            ["call", "tickets__create", {"title": "Low", "body": "", "priority": "low"}],
            ["run", decide("approve", "1")],
            ["call", "tickets__create", urgent],
            ["call", "tickets__create", urgent],
            ["call", "tickets__create", reordered],
            ["run", decide("deny", "2")],
            ["call", "tickets__create", urgent],
            ["call", "tickets__create", urgent],
        ]),
    );
    let waiting = |n: u64| {
        format!(
            "waiting for human approval {n}: a person decides with `harness approvals approve {n}` \
             or `deny {n}`; then call again with the same arguments"
        )
    };
    assert_eq!(seen[0]["text"], waiting(1), "{:?}", seen[0]);
    assert_eq!(
        seen[1]["text"],
        waiting(1),
        "the same call waits for the same approval"
    );
    assert_eq!(
        seen[2]["is_error"], false,
        "the rule does not apply: {:?}",
        seen[2]
    );
    assert_eq!(seen[3], json!({"exit": 0}));
    assert_eq!(
        seen[4]["is_error"], false,
        "approved: it runs: {:?}",
        seen[4]
    );
    assert_eq!(seen[4]["structured"]["title"], "VPN down");
    assert_eq!(seen[5]["text"], waiting(2), "the decision was used once");
    assert_eq!(
        seen[6]["text"],
        waiting(2),
        "the same arguments with keys in another order: {:?}",
        seen[6]
    );
    assert_eq!(seen[9]["text"], waiting(3), "the denial was used once");
    assert_eq!(
        seen[8]["text"],
        "refused by the harness (approval): denied by root: checked".replace(
            "root",
            &std::env::var("USER").unwrap_or_else(|_| "cli".into())
        )
    );
}

#[test]
fn a_confirm_gated_call_asks_its_user_in_either_era() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\nconfirm = { when = { priority = [\"urgent\"] } }",
        )
        .write(tmp.path());
    let urgent = json!({"title": "VPN down", "body": "", "priority": "urgent"});
    let low = json!({"title": "Printer", "body": "", "priority": "low"});
    let calls = json!([
        ["call", "tickets__create", urgent],
        ["call", "tickets__create", low],
    ]);
    let refused = |why: &str| {
        format!(
            "refused by the harness (confirmation): `tickets.create` needs the confirmation of \
             the user it runs for: {why}"
        )
    };
    // Legacy sessions are asked with `elicitation/create`, 2026-07-28 clients with an
    // `input_required` result the SDK answers and retries.
    for mode in ["legacy", "2026-07-28"] {
        let run = |confirm| client_in(mode, confirm, &policy, "ana", &[], calls.clone());

        let accepted = run(Some("accept"));
        assert_eq!(
            accepted.len(),
            3,
            "{mode}: asked once, two results: {accepted:?}"
        );
        assert_eq!(
            accepted[0]["asked"],
            "Allow `tickets.create` to run with these arguments? \
             {\"title\":\"VPN down\",\"body\":\"\",\"priority\":\"urgent\"}",
            "{mode}"
        );
        assert_eq!(accepted[1]["is_error"], false, "{mode}: {:?}", accepted[1]);
        assert_eq!(accepted[1]["structured"]["title"], "VPN down");
        assert_eq!(
            accepted[2]["is_error"], false,
            "{mode}: the rule does not apply: {:?}",
            accepted[2]
        );

        let declined = run(Some("decline"));
        assert!(declined[0]["asked"].is_string(), "{mode}: {declined:?}");
        assert_eq!(declined[1]["text"], refused("they declined"), "{mode}");
        assert_eq!(declined[2]["is_error"], false, "{mode}");

        let cancelled = run(Some("cancel"));
        assert_eq!(
            cancelled[1]["text"],
            refused("they dismissed the question"),
            "{mode}"
        );

        let unable = run(None);
        assert_eq!(
            unable[0]["text"],
            refused("their client cannot ask them (it declared no form elicitation capability)"),
            "{mode}"
        );
        assert_eq!(unable[1]["is_error"], false, "{mode}");
    }

    let db = rusqlite::Connection::open(tmp.path().join("data/state.sqlite3")).unwrap();
    let confirmed: Vec<String> = db
        .prepare("SELECT record FROM audit WHERE kind = 'tool.confirmed' ORDER BY seq")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(confirmed.len(), 2, "one yes per era: {confirmed:?}");
    assert!(
        confirmed[0].contains("\"how\":\"MCP elicitation\""),
        "{confirmed:?}"
    );
    assert!(
        confirmed[1].contains("\"how\":\"MCP input_required\""),
        "{confirmed:?}"
    );
    assert!(
        confirmed[0].contains("\"principal\":\"ana\""),
        "{confirmed:?}"
    );
    let state = StateStore::open(&tmp.path().join("data")).unwrap();
    assert!(state.verify_audit(None).unwrap().is_ok());
}

#[test]
fn a_changed_whitelist_swaps_in_and_a_broken_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = || {
        PolicyFile::new(&tmp.path().join("cache"))
            .data_dir(&tmp.path().join("data"))
            .tool("calc", &example_tool("calc"), "")
    };
    let policy = base().write(tmp.path());
    let next = tmp.path().join("next");
    std::fs::create_dir(&next).unwrap();
    // The same tools plus kb, and then a file with a key nobody knows.
    let grown = base().tool("kb", &example_tool("kb"), "").write(&next);
    let broken = next.join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&grown).unwrap() + "\n[tools.calc2]\ncomponnt = \"x\"\n",
    )
    .unwrap();
    let copy = |from: &Path| {
        json!([
            "cp",
            from.display().to_string(),
            policy.display().to_string()
        ])
    };
    let names = |listed: &Value| -> Vec<String> {
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen = client(
        &policy,
        "ana",
        &[],
        json!([
            ["list"],
            ["run", copy(&grown)],
            ["await_list_changed", 30],
            ["list"],
            ["run", copy(&broken)],
            ["await_list_changed", 3],
            ["list"],
            ["call", "calc__apply", {"op": "add", "a": 2, "b": 2}],
        ]),
    );
    assert!(!names(&seen[0]).iter().any(|n| n.starts_with("kb__")));
    assert_eq!(seen[2], json!({"list_changed": true}), "{seen:?}");
    assert!(
        names(&seen[3]).contains(&"kb__search".to_owned()),
        "{:?}",
        seen[3]
    );
    assert_eq!(
        seen[5],
        json!({"list_changed": false}),
        "a broken file changes nothing"
    );
    assert_eq!(names(&seen[6]), names(&seen[3]));
    assert_eq!(seen[7]["structured"], json!({"result": 4.0}));
}

#[test]
fn a_rate_limits_an_mcp_principal() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "rate = \"2/min\"")
        .write(tmp.path());
    let add = json!(["call", "calc__apply", {"op": "add", "a": 1, "b": 1}]);
    let seen = client(&policy, "ana", &[], json!([add, add, add]));
    assert_eq!(seen[1]["is_error"], false);
    assert_eq!(
        seen[2]["text"],
        "refused by the harness (rate): ana may call `calc` 2 per 1m; try again later"
    );
    let other = client(&policy, "bob", &[], json!([add]));
    assert_eq!(other[0]["is_error"], false, "the rate is per principal");
}

/// Starts the Python client calling `slow__spin` on `served` (with `key`, if any); its output
/// is piped.
fn spawn_slow_call(served: &Served, key: Option<&str>) -> std::process::Child {
    let root = repo_root();
    let mut command = Command::new(root.join(".venv/bin/python"));
    command
        .arg(root.join("tests/mcp/client.py"))
        .arg(json!([["call", "slow__spin", {}]]).to_string())
        .arg(served.url())
        .env("HARNESS_MCP_MODE", "2026-07-28")
        .stdout(std::process::Stdio::piped());
    if let Some(key) = key {
        command.env("HARNESS_MCP_KEY", key);
    }
    command.spawn().unwrap()
}

/// Waits until a call was admitted in the state of `data` (its record is in the chain): from
/// then on it runs in the sandbox.
/// A whitelist whose `slow` tool spins until its `timeout`, with fuel to spare.
fn slow_policy(dir: &Path, timeout: &str) -> std::path::PathBuf {
    PolicyFile::new(&dir.join("cache"))
        .data_dir(&dir.join("data"))
        .tool(
            "slow",
            &hostile(),
            &format!("fuel = 1_000_000_000_000\ntimeout = \"{timeout}\""),
        )
        .write(dir)
}

/// The kinds of the audit records in the state of `data`, in order.
fn audit_kinds(data: &Path) -> Vec<String> {
    rusqlite::Connection::open(data.join("state.sqlite3"))
        .unwrap()
        .prepare("SELECT kind FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn wait_until_admitted(data: &Path) {
    let state = StateStore::open(data).unwrap();
    let started = std::time::Instant::now();
    while state.verify_audit(None).unwrap().unwrap().records == 0 {
        assert!(started.elapsed().as_secs() < 30, "the call never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn shutdown_lets_a_call_in_flight_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = slow_policy(tmp.path(), "3s");
    let mut served = Served::start(&policy);
    let call = spawn_slow_call(&served, None);
    wait_until_admitted(&tmp.path().join("data"));
    let term = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let output = call.wait_with_output().unwrap();
    let seen: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert!(
        seen.first().is_some_and(|r| r["text"]
            .as_str()
            .is_some_and(|t| t.contains("timed out after 3s"))),
        "the call in flight got its own outcome: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let status = served.child.wait().unwrap();
    assert!(status.success(), "harness serve exits cleanly: {status}");
}

#[test]
fn a_call_still_running_after_the_grace_period_is_cancelled_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = slow_policy(tmp.path(), "30s");
    let mut served = Served::start_with(&policy, &["--grace", "300ms"]);
    let call = spawn_slow_call(&served, None);
    wait_until_admitted(&tmp.path().join("data"));
    let term = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopping = std::time::Instant::now();
    let status = served.child.wait().unwrap();
    assert!(status.success(), "harness serve exits cleanly: {status}");
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(20),
        "it did not wait for the 30-second call: {:?}",
        stopping.elapsed()
    );
    let _ = call.wait_with_output();

    assert_eq!(
        audit_kinds(&tmp.path().join("data")),
        ["tool.admitted", "tool.cancelled"]
    );
    let state = StateStore::open(&tmp.path().join("data")).unwrap();
    assert!(state.verify_audit(None).unwrap().is_ok());
}

#[test]
fn a_call_its_client_cancels_stops_and_is_recorded() {
    use std::io::{BufRead, BufReader, Write};
    let tmp = tempfile::tempdir().unwrap();
    let policy = slow_policy(tmp.path(), "30s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["mcp", "--policy"])
        .arg(&policy)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let started = std::time::Instant::now();
    writeln!(
        input,
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}
{{"jsonrpc":"2.0","method":"notifications/initialized"}}
{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"slow__spin","arguments":{{}}}}}}"#
    )
    .unwrap();
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    wait_until_admitted(&tmp.path().join("data"));
    writeln!(
        input,
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":1,"reason":"changed my mind"}}}}"#
    )
    .unwrap();
    // Still connected: the cancellation, not the end of the session, stops the call.
    let kinds = || audit_kinds(&tmp.path().join("data"));
    while kinds().len() < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the 30-second call was not stopped: {:?}",
            kinds()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(kinds(), ["tool.admitted", "tool.cancelled"]);
    drop(input);
    assert!(child.wait().unwrap().success());
}

#[test]
fn results_leave_screened_when_the_whitelist_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("kb");
    std::fs::create_dir(&kb).unwrap();
    std::fs::write(
        kb.join("contact.md"),
        "# Contact\nWrite to ana.lopez@example.com.\n",
    )
    .unwrap();
    std::fs::write(
        kb.join("card.md"),
        "# Card\nThe card is 4111 1111 1111 1111.\n",
    )
    .unwrap();
    let whitelist = |extra: &str| {
        PolicyFile::new(&tmp.path().join("cache"))
            .data_dir(&tmp.path().join("data"))
            .tool(
                "kb",
                &example_tool("kb"),
                &format!(
                    "fs = [{{ host = {:?}, guest = \"/kb\", mode = \"ro\" }}]",
                    kb.display().to_string()
                ),
            )
            .raw(extra)
            .write(tmp.path())
    };
    let actions = json!([
        ["call", "kb__document", {"path": "/kb/contact.md"}],
        ["call", "kb__document", {"path": "/kb/card.md"}],
    ]);
    let plain = client(&whitelist(""), "ana", &[], actions.clone());
    assert!(
        plain[0]["text"]
            .as_str()
            .unwrap()
            .contains("ana.lopez@example.com")
    );

    let screened = client(
        &whitelist("[mcp]\npii = { card = \"block\" }"),
        "ana",
        &[],
        actions,
    );
    let text = screened[0]["text"].as_str().unwrap();
    assert!(
        text.contains("[email]") && !text.contains("ana.lopez"),
        "{text}"
    );
    assert_eq!(
        screened[1]["text"],
        "the tool's result was withheld: it contains card data"
    );
    assert_eq!(screened[1]["is_error"], true);
}

#[test]
fn a_client_over_its_concurrency_gets_429() {
    const KEY: &str = "hk_one-at-a-time";
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool(
            "slow",
            &hostile(),
            "fuel = 100_000_000_000\ntimeout = \"2s\"",
        )
        .raw(&format!(
            "[clients.solo]\nkey_sha256 = \"{}\"\nconcurrency = 1\n",
            harness_sandbox::Sha256Digest::of(KEY.as_bytes())
        ))
        .write(tmp.path());
    let served = Served::start(&policy);
    let slow = spawn_slow_call(&served, Some(KEY));
    wait_until_admitted(&tmp.path().join("data"));
    let second = served.ping(&format!("Authorization: Bearer {KEY}\r\n"));
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("retry-after: 1"),
        "{second}"
    );
    slow.wait_with_output().unwrap();
    let after = served.ping(&format!("Authorization: Bearer {KEY}\r\n"));
    assert!(
        !after.starts_with("HTTP/1.1 429"),
        "a slot is free again: {after}"
    );
}

#[test]
fn the_chain_holds_over_mcp_calls_and_agent_runs_interleaved() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .scripted_agent(
            tmp.path(),
            "helper",
            "{\"calls\": [{\"name\": \"calc__apply\", \"arguments\": {\"op\": \"mul\", \"a\": 6, \"b\": 7}}]}\n{\"text\": \"42\"}\n",
            "",
        )
        .write(tmp.path());
    let harness = env!("CARGO_BIN_EXE_harness");
    let policy_arg = policy.display().to_string();
    let run = json!([harness, "run", "--policy", policy_arg, "what is 6 times 7?"]);
    let add = json!(["call", "calc__apply", {"op": "add", "a": 1, "b": 1}]);
    let seen = client(
        &policy,
        "ana",
        &[],
        json!([add, ["run", run], add, ["run", run], add]),
    );
    assert_eq!(seen[1], json!({"exit": 0}));
    assert_eq!(seen[4]["structured"], json!({"result": 2.0}));
    let verify = Command::new(harness)
        .args(["audit-log", "verify", "--policy", &policy_arg])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    assert!(stdout.contains("chain intact"), "{stdout}");
}
