//! The example tools in `tools/`, built from source with the guest SDK, each called through the
//! whole boundary with the grants its README gives: the knowledge base over a read-only folder,
//! the weather tool against a loopback API with a host-injected key, and the tickets tool in
//! key-value storage with the caller recorded.

use std::path::Path;

use harness_e2e::http_server::{HttpServer, response};
use harness_e2e::{PolicyFile, example_tool};
use harness_sandbox::Capability;
use harness_sandbox::{CallContext, CallReport, Host, Outcome, Policy};
use serde_json::{Value, json};

/// The weather API key the host's environment holds in these tests.
const WEATHER_KEY: &str = "Bearer wx-k3y-only-the-h0st-knows";

fn load(dir: &Path, policy: PolicyFile) -> Host {
    let path = policy.write(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |name: &str| (name == "WEATHER_TOKEN").then(|| WEATHER_KEY.to_owned());
    Host::load(Policy::parse_with_env(&text, &path, &env).unwrap()).unwrap()
}

async fn call_as(host: &Host, function: &str, args: Value, caller: &CallContext) -> CallReport {
    host.call(function, &args.to_string(), caller)
        .await
        .unwrap_or_else(|e| panic!("{function} refused: {e}"))
}

async fn call(host: &Host, function: &str, args: Value) -> CallReport {
    call_as(
        host,
        function,
        args,
        &CallContext::new("ana", "run-examples"),
    )
    .await
}

fn ok(report: &CallReport) -> &Value {
    match &report.outcome {
        Outcome::Ok { value } => value,
        other => panic!("expected ok: {other:?}"),
    }
}

fn tool_error(report: &CallReport) -> &Value {
    match &report.outcome {
        Outcome::ToolError { error } => error,
        other => panic!("expected a tool error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_searches_a_read_only_folder_and_reads_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("kb");
    std::fs::create_dir_all(kb.join("it")).unwrap();
    std::fs::write(
        kb.join("it/vpn.md"),
        "# VPN access\n\nTo reset your VPN password, open the portal.\n",
    )
    .unwrap();
    std::fs::write(
        kb.join("printers.md"),
        "# Printers\n\nThe printer password is on the label.\n",
    )
    .unwrap();
    std::fs::write(kb.join("notes.txt"), "nothing relevant\n").unwrap();
    std::fs::write(kb.join("image.png"), "vpn password").unwrap();
    std::fs::write(tmp.path().join("outside.md"), "vpn password secret").unwrap();
    let grant = format!(
        r#"fs = [{{ host = {:?}, guest = "/kb", mode = "ro" }}]"#,
        kb.display().to_string()
    );
    let host = load(
        tmp.path(),
        PolicyFile::new(&tmp.path().join("cache")).tool("kb", &example_tool("kb"), &grant),
    );

    let report = call(
        &host,
        "kb.search",
        json!({"query": "reset VPN password", "limit": null}),
    )
    .await;
    let hits = ok(&report).as_array().unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0]["path"], "/kb/it/vpn.md");
    assert_eq!(hits[0]["title"], "VPN access");
    assert_eq!(hits[0]["score"], 3);
    assert_eq!(hits[0]["snippet"], "# VPN access");
    assert_eq!(hits[1]["path"], "/kb/printers.md");
    assert_eq!(
        report.logs[0].message,
        "2 of 4 files match \"reset VPN password\""
    );

    let limited = call(&host, "kb.search", json!({"query": "password", "limit": 1})).await;
    assert_eq!(ok(&limited).as_array().unwrap().len(), 1);
    assert_eq!(
        tool_error(&call(&host, "kb.search", json!({"query": "? !", "limit": null})).await),
        "empty-query"
    );

    let document = call(&host, "kb.document", json!({"path": "/kb/it/vpn.md"})).await;
    assert!(ok(&document).as_str().unwrap().contains("open the portal"));

    // Nothing outside the grant exists for the tool, however it is named.
    for path in [
        "/kb/../outside.md",
        "../outside.md",
        "/etc/passwd",
        "/kb/it/../../outside.md",
    ] {
        let report = call(&host, "kb.document", json!({ "path": path })).await;
        let error = tool_error(&report)["unreadable"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(error.starts_with(path), "{path}: {error}");
    }
}

/// A weather API on loopback that answers only requests carrying the key.
fn weather_api() -> HttpServer {
    HttpServer::start(|request| {
        if request.header("authorization") != Some(WEATHER_KEY) {
            return response(401, &[], b"{\"error\": \"missing key\"}");
        }
        let target = request.request_line().split(' ').nth(1).unwrap_or_default();
        match target {
            "/v1/current?city=S%C3%A3o%20Paulo" => response(
                200,
                &[("content-type", "application/json")],
                // The API echoes the key it was sent, as some do; the host redacts it.
                format!(
                    r#"{{"city": "São Paulo", "temperature_c": 24.5, "wind_kph": 11.0, "summary": "clear, key {WEATHER_KEY}"}}"#
                )
                .as_bytes(),
            ),
            _ => response(404, &[], b"{\"error\": \"unknown city\"}"),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weather_reaches_its_api_with_a_key_it_never_sees() {
    let api = weather_api();
    let tmp = tempfile::tempdir().unwrap();
    let grants = format!(
        r#"http = [{{ url = "http://127.0.0.1:{port}/v1", methods = ["GET"] }}]
           secrets = {{ "127.0.0.1" = {{ header = "Authorization", value_from_env = "WEATHER_TOKEN" }} }}
           env = {{ WEATHER_API = "http://127.0.0.1:{port}" }}"#,
        port = api.port()
    );
    let host = load(
        tmp.path(),
        PolicyFile::new(&tmp.path().join("cache")).tool(
            "weather",
            &example_tool("weather"),
            &grants,
        ),
    );

    let report = call(&host, "weather.current", json!({"city": "São Paulo"})).await;
    let conditions = ok(&report);
    assert_eq!(conditions["city"], "São Paulo");
    assert_eq!(conditions["temperature-c"], 24.5);
    assert_eq!(conditions["summary"], "clear, key [redacted]");
    assert_eq!(api.requests()[0].header("authorization"), Some(WEATHER_KEY));
    assert!(
        !format!("{report:?}").contains("k3y"),
        "the key leaked: {report:?}"
    );

    let unknown = call(&host, "weather.current", json!({"city": "Atlantis"})).await;
    assert_eq!(tool_error(&unknown), &json!({"unknown-city": "Atlantis"}));

    // The same tool pointed elsewhere: the host refuses, the tool says so, nothing connects.
    let elsewhere = HttpServer::ok("{}");
    let grants = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}/v1", methods = ["GET"] }}]
           env = {{ WEATHER_API = "http://127.0.0.1:{}" }}"#,
        api.port(),
        elsewhere.port()
    );
    let dir = tmp.path().join("misdirected");
    std::fs::create_dir_all(&dir).unwrap();
    let host = load(
        &dir,
        PolicyFile::new(&dir.join("cache")).tool("weather", &example_tool("weather"), &grants),
    );
    let report = call(&host, "weather.current", json!({"city": "São Paulo"})).await;
    let upstream = tool_error(&report)["upstream"].as_str().unwrap();
    assert!(upstream.contains("denied by the host"), "{upstream}");
    assert_eq!(report.denials[0].capability, Capability::Http);
    assert_eq!(elsewhere.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_tickets_are_stored_per_caller_and_survive_a_restart() {
    tickets_scenario(&example_tool("tickets")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_tickets_behave_exactly_like_the_rust_ones() {
    tickets_scenario(&example_tool("tickets-py")).await;
}

/// Agents see the same functions, schemas and descriptions from both twins: they come from
/// the one WIT world, whatever language implements it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_tickets_offer_the_same_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let host = load(
        tmp.path(),
        PolicyFile::new(&tmp.path().join("cache"))
            .tool("rust", &example_tool("tickets"), "")
            .tool("python", &example_tool("tickets-py"), ""),
    );
    let offered = |tool: &str| {
        let tool = host.tools().find(|t| t.policy.name == tool).unwrap();
        tool.functions
            .iter()
            .map(|f| {
                json!({"name": f.name, "description": f.description, "parameters": f.parameters_schema,
                       "result": f.result_schema, "error": f.error_schema})
            })
            .collect::<Vec<_>>()
    };
    let python = offered("python");
    assert_eq!(python, offered("rust"));
    // componentize-py's own `exports.init` hook is neither offered nor callable.
    assert!(host.function("python.exports.init").is_err());
    let names: Vec<_> = python.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["create", "get", "list", "resolve"]);
    assert_eq!(
        python[0]["description"],
        "Open a ticket on behalf of the caller and return it with its number."
    );
    assert_eq!(
        python[0]["parameters"]["properties"]["priority"]["enum"],
        json!(["low", "normal", "high", "urgent"])
    );
    assert_eq!(
        python[0]["result"]["properties"]["opened-by"]["description"],
        "The principal who opened it."
    );
}

/// The tickets scenario, for either implementation in `component`.
async fn tickets_scenario(component: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let policy = || {
        PolicyFile::new(&tmp.path().join("cache"))
            .data_dir(&tmp.path().join("data"))
            .tool("tickets", component, r#"kv = { quota = "64 KiB" }"#)
    };
    let host = load(tmp.path(), policy());
    let ana = CallContext::new("ana", "run-1");
    let bob = CallContext::new("bob", "run-2");
    let support = CallContext {
        roles: vec!["support".into()],
        ..CallContext::new("sam", "run-3")
    };

    let first = call_as(
        &host,
        "tickets.create",
        json!({"title": "  VPN is down ", "body": "since 9:00", "priority": "high"}),
        &ana,
    )
    .await;
    assert_eq!(
        ok(&first),
        &json!({"id": 1, "title": "VPN is down", "body": "since 9:00", "priority": "high",
                "status": "open", "opened-by": "ana", "opened-in-run": "run-1"})
    );
    assert_eq!(first.logs[0].message, "ticket 1 opened by ana");
    let second = call_as(
        &host,
        "tickets.create",
        json!({"title": "Printer jam", "body": "", "priority": "low"}),
        &bob,
    )
    .await;
    assert_eq!(ok(&second)["id"], 2);

    let refused = call_as(
        &host,
        "tickets.create",
        json!({"title": " ", "body": "", "priority": "low"}),
        &bob,
    )
    .await;
    assert_eq!(
        tool_error(&refused),
        &json!({"invalid": "the title is empty"})
    );

    // Bob may not resolve Ana's ticket; support may.
    let denied = call_as(&host, "tickets.resolve", json!({"id": 1}), &bob).await;
    assert_eq!(
        tool_error(&denied),
        &json!({"not-allowed": "bob did not open ticket 1 and lacks the support role"})
    );
    let resolved = call_as(&host, "tickets.resolve", json!({"id": 1}), &support).await;
    assert_eq!(ok(&resolved)["status"], "closed");
    assert_eq!(
        tool_error(&call(&host, "tickets.get", json!({"id": 9})).await),
        &json!({"not-found": 9})
    );
    drop(host);

    // A new host over the same data directory sees the same tickets.
    let host = load(tmp.path(), policy());
    let all = call(&host, "tickets.list", json!({"status": null})).await;
    let ids: Vec<_> = ok(&all)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!(2), json!(1)], "newest first");
    let open = call(&host, "tickets.list", json!({"status": "open"})).await;
    assert_eq!(ok(&open)[0]["title"], "Printer jam");
    assert_eq!(ok(&open).as_array().unwrap().len(), 1);
    let third = call_as(
        &host,
        "tickets.create",
        json!({"title": "Badge", "body": "", "priority": "normal"}),
        &ana,
    )
    .await;
    assert_eq!(ok(&third)["id"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_without_storage_fail_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let host = load(
        tmp.path(),
        PolicyFile::new(&tmp.path().join("cache")).tool("tickets", &example_tool("tickets"), ""),
    );
    let report = call(
        &host,
        "tickets.create",
        json!({"title": "x", "body": "", "priority": "low"}),
    )
    .await;
    assert_eq!(
        tool_error(&report),
        &json!({"storage": "storage of \"next-id\": the tool has no key-value grant"})
    );
    assert_eq!(report.denials[0].capability, Capability::KeyValue);
}
