//! `harness serve`'s `/v1` JSON API over real HTTP: listing tools, calls through the gates with
//! their problem documents, keys, and the OpenAPI document describing what it answers.

mod common;

use common::{Served, conforms};
use harness_e2e::{PolicyFile, example_tool, hostile};
use serde_json::{Value, json};

const DESK: &str = "hk_desk-key-for-api-tests";
const VIEWER: &str = "hk_viewer-key-for-api-tests";
const LEAD: &str = "hk_lead-key-for-api-tests";
const OPS: &str = "hk_ops-key-for-api-tests";
const ADMIN: &str = "hk_admin-key-for-api-tests";

fn served(tmp: &std::path::Path) -> Served {
    let sha = |key: &str| harness_sandbox::Sha256Digest::of(key.as_bytes()).to_string();
    let policy = PolicyFile::new(&tmp.join("cache"))
        .data_dir(&tmp.join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\nroles = [\"support\"]\n\
             approval = { when = { priority = [\"urgent\"] } }",
        )
        .tool("hostile", &hostile(), "fuel = 2_000_000")
        .raw(&format!(
            "[clients.desk]\nkey_sha256 = \"{}\"\nroles = [\"support\"]\n\n\
             [clients.viewer]\nkey_sha256 = \"{}\"\nprincipal = \"vera\"\n\n\
             [clients.lead]\nkey_sha256 = \"{}\"\nroles = [\"approver\"]\n\n\
             [clients.ops]\nkey_sha256 = \"{}\"\nroles = [\"operator\"]\n\n\
             [clients.admin]\nkey_sha256 = \"{}\"\nroles = [\"support\", \"approver\", \"operator\"]\nact_for = true\n\n\
             [budgets]\nuser_fuel = \"1000000000/day\"\n",
            sha(DESK),
            sha(VIEWER),
            sha(LEAD),
            sha(OPS),
            sha(ADMIN)
        ))
        .write(tmp);
    Served::start(&policy)
}

fn key(key: &str) -> String {
    format!("Authorization: Bearer {key}\r\n")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn the_api_lists_tools_and_calls_them_through_the_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let desk = key(DESK);

    let (status, body) = served.http("GET", "/v1/tools", &desk, "");
    assert_eq!(status, 200, "{body}");
    let tools = json(&body);
    let apply = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "calc__apply")
        .unwrap_or_else(|| panic!("calc__apply is listed: {tools}"));
    assert_eq!(apply["path"], "/v1/tools/calc/apply");
    assert_eq!(apply["annotations"]["read_only"], true);
    assert_eq!(apply["input_schema"]["type"], "object");

    let call = |path: &str, who: &str, body: &str| {
        let (status, body) = served.http("POST", path, who, body);
        (status, json(&body))
    };
    let (status, ran) = call("/v1/tools/calc/apply", &desk, r#"{"op":"mul","a":6,"b":7}"#);
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["decision"], "ran");
    assert_eq!(ran["function"], "calc.apply");
    assert_eq!(ran["outcome"], json!({"kind": "ok", "value": 42.0}));
    assert!(ran["fuel"].as_u64().unwrap() > 0, "{ran}");

    let (status, error) = call("/v1/tools/calc/apply", &desk, r#"{"op":"div","a":1,"b":0}"#);
    assert_eq!(
        (status, &error["outcome"]["kind"]),
        (200, &json!("tool_error"))
    );

    let (status, stopped) = call("/v1/tools/hostile/spin", &desk, "{}");
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["outcome"]["kind"], "stopped", "{stopped}");
    assert_eq!(
        stopped["outcome"]["stop"]["reason"], "out_of_fuel",
        "{stopped}"
    );

    let problem = |status: u16, body: &Value, kind: &str, gate: Option<&str>| {
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(
            body["type"],
            format!("urn:harness:problem:{kind}"),
            "{body}"
        );
        assert_eq!(body["gate"].as_str(), gate, "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    };
    let (status, body) = call("/v1/tools/tickets/list", &key(VIEWER), "{}");
    assert_eq!(status, 403);
    problem(403, &body, "refused", Some("role"));
    assert_eq!(
        body["detail"],
        "`tickets` needs one of the roles support; vera has none"
    );
    let (status, body) = call(
        "/v1/tools/calc/apply",
        &desk,
        r#"{"op":"mul","a":"six","b":7}"#,
    );
    assert_eq!(status, 422);
    problem(422, &body, "invalid-arguments", Some("arguments"));
    let (status, body) = call("/v1/tools/nothing/here", &desk, "{}");
    assert_eq!(status, 404);
    problem(404, &body, "unknown-tool", Some("routing"));
    let (status, body) = call("/v1/tools/calc/apply", &desk, "{not json");
    assert_eq!(status, 400);
    problem(400, &body, "invalid-body", None);

    let urgent = r#"{"title":"VPN down","body":"","priority":"urgent"}"#;
    let (status, waiting) = call("/v1/tools/tickets/create", &desk, urgent);
    assert_eq!(status, 202, "{waiting}");
    assert_eq!(
        waiting,
        json!({"decision": "awaiting_approval", "approval": 1})
    );

    let (status, body) = served.http("GET", "/v1/tools", "", "");
    assert_eq!(status, 401, "{body}");
}

#[test]
fn approvers_decide_approvals_and_each_decision_applies_once() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let (desk, lead) = (key(DESK), key(LEAD));
    let ask = |method: &str, path: &str, who: &str, body: &str| {
        let (status, body) = served.http(method, path, who, body);
        (status, json(&body))
    };
    let urgent = r#"{"title":"VPN down","body":"","priority":"urgent"}"#;
    let create = || ask("POST", "/v1/tools/tickets/create", &desk, urgent);
    assert_eq!(
        create(),
        (202, json!({"decision": "awaiting_approval", "approval": 1}))
    );

    let (status, body) = ask("GET", "/v1/approvals", &key(VIEWER), "");
    assert_eq!(
        (status, &body["type"]),
        (403, &json!("urn:harness:problem:missing-role"))
    );
    let (status, pending) = ask("GET", "/v1/approvals", &lead, "");
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending[0]["id"], 1);
    assert_eq!(pending[0]["function"], "tickets.create");
    assert_eq!(pending[0]["principal"], "desk");
    assert_eq!(pending[0]["arguments"]["priority"], "urgent");

    let (status, body) = ask("POST", "/v1/approvals/1/deny", &lead, "{}");
    assert_eq!(
        (status, &body["type"]),
        (400, &json!("urn:harness:problem:reason-required"))
    );
    let (status, approved) = ask("POST", "/v1/approvals/1/approve", &lead, "{}");
    assert_eq!(status, 200, "{approved}");
    assert_eq!(
        (&approved["decision"], &approved["decided_by"]),
        (&json!("approved"), &json!("lead"))
    );
    let (status, body) = ask("POST", "/v1/approvals/1/approve", &lead, "{}");
    assert_eq!(
        (status, &body["type"]),
        (409, &json!("urn:harness:problem:decided"))
    );
    let (status, body) = ask("POST", "/v1/approvals/99/approve", &lead, "{}");
    assert_eq!(
        (status, &body["type"]),
        (404, &json!("urn:harness:problem:unknown-approval"))
    );

    let (status, ran) = create();
    assert_eq!(
        (status, &ran["decision"]),
        (200, &json!("ran")),
        "approved: it runs once"
    );
    assert_eq!(
        create(),
        (202, json!({"decision": "awaiting_approval", "approval": 2}))
    );
    let (status, _) = ask(
        "POST",
        "/v1/approvals/2/deny",
        &lead,
        r#"{"reason":"not now"}"#,
    );
    assert_eq!(status, 200);
    let (status, refused) = create();
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["gate"], "approval");
    assert_eq!(refused["detail"], "denied by lead: not now");
    let (_, listed) = ask("GET", "/v1/approvals?all=true", &lead, "");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(create().1["approval"], 3, "the denial was used once");
}

#[test]
fn operators_switch_tools_off_and_on() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let (desk, ops) = (key(DESK), key(OPS));
    let ask = |method: &str, path: &str, who: &str, body: &str| {
        let (status, body) = served.http(method, path, who, body);
        (
            status,
            if body.is_empty() {
                Value::Null
            } else {
                json(&body)
            },
        )
    };
    let add = || {
        ask(
            "POST",
            "/v1/tools/calc/apply",
            &desk,
            r#"{"op":"add","a":1,"b":2}"#,
        )
    };
    let kill = r#"{"reason":"maintenance"}"#;

    let (status, body) = ask("PUT", "/v1/switches/tools/calc", &desk, kill);
    assert_eq!(
        (status, &body["type"]),
        (403, &json!("urn:harness:problem:missing-role"))
    );
    let (status, body) = ask("PUT", "/v1/switches/tools/calc", &ops, "{}");
    assert_eq!(
        (status, &body["type"]),
        (400, &json!("urn:harness:problem:reason-required"))
    );
    let (status, body) = ask("PUT", "/v1/switches/tools/nothing", &ops, kill);
    assert_eq!(
        (status, &body["type"]),
        (404, &json!("urn:harness:problem:unknown-switch"))
    );
    let (status, body) = ask("PUT", "/v1/switches/gadgets/calc", &ops, kill);
    assert_eq!(
        (status, &body["type"]),
        (404, &json!("urn:harness:problem:unknown-switch"))
    );

    let (status, off) = ask("PUT", "/v1/switches/tools/calc", &ops, kill);
    assert_eq!(status, 200, "{off}");
    assert_eq!(
        (&off["target"], &off["reason"]),
        (&json!("tool:calc"), &json!("maintenance"))
    );
    let (status, refused) = add();
    assert_eq!(
        (status, &refused["gate"]),
        (503, &json!("kill_switch")),
        "{refused}"
    );
    assert_eq!(
        refused["detail"],
        "the tool `calc` is switched off: maintenance"
    );
    let (_, tools) = ask("GET", "/v1/tools", &desk, "");
    assert!(
        tools
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "calc__apply"),
        "a switched-off tool is not listed: {tools}"
    );
    let (status, switches) = ask("GET", "/v1/switches", &ops, "");
    assert_eq!((status, &switches[0]["target"]), (200, &json!("tool:calc")));

    let (status, _) = ask("DELETE", "/v1/switches/tools/calc", &ops, "");
    assert_eq!(status, 204);
    assert_eq!(add().0, 200, "back in service");
    let (_, switches) = ask("GET", "/v1/switches", &ops, "");
    assert_eq!(switches, json!([]));
}

#[test]
fn operators_read_what_budgets_spent_and_what_the_log_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let (desk, ops) = (key(DESK), key(OPS));
    let ask = |method: &str, path: &str, who: &str, body: &str| {
        let (status, body) = served.http(method, path, who, body);
        (status, json(&body))
    };
    assert_eq!(
        ask(
            "POST",
            "/v1/tools/calc/apply",
            &desk,
            r#"{"op":"add","a":1,"b":2}"#
        )
        .0,
        200
    );
    assert_eq!(
        ask(
            "POST",
            "/v1/tools/calc/apply",
            &desk,
            r#"{"op":"div","a":1,"b":0}"#
        )
        .0,
        200
    );
    assert_eq!(
        ask("POST", "/v1/tools/tickets/list", &key(VIEWER), "{}").0,
        403
    );

    let (status, body) = ask("GET", "/v1/metrics", &desk, "");
    assert_eq!(
        (status, &body["type"]),
        (403, &json!("urn:harness:problem:missing-role"))
    );
    let (status, budgets) = ask("GET", "/v1/budgets", &ops, "");
    assert_eq!(status, 200, "{budgets}");
    let fuel = budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == "fuel:user:desk")
        .unwrap_or_else(|| panic!("desk's fuel is counted: {budgets}"));
    assert_eq!(
        (&fuel["limit"], &fuel["window_secs"]),
        (&json!(1_000_000_000), &json!(86_400))
    );
    assert!(fuel["spent"].as_u64().unwrap() > 0, "{fuel}");

    let (status, metrics) = ask("GET", "/v1/metrics?window=1h", &ops, "");
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(metrics["window_secs"], 3600);
    let apply = metrics["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"] == "calc.apply")
        .unwrap_or_else(|| panic!("calc.apply is counted: {metrics}"));
    assert_eq!((&apply["calls"], &apply["errors"]), (&json!(2), &json!(1)));
    assert_eq!(metrics["refusals"]["role"], 1, "{metrics}");
    let (status, all_time) = ask("GET", "/v1/metrics?window=1000000hours", &ops, "");
    assert_eq!(
        status, 200,
        "a window before 1970 counts from 1970: {all_time}"
    );
    assert_eq!(all_time["tools"], metrics["tools"]);
    let (status, body) = ask("GET", "/v1/metrics?window=soon", &ops, "");
    assert_eq!(
        (status, &body["type"]),
        (400, &json!("urn:harness:problem:invalid-window"))
    );
}

/// The value of the sample `series` (name and labels as Prometheus writes them) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[test]
fn prometheus_metrics_parse_and_move_with_calls_refusals_stops_and_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let (desk, ops) = (key(DESK), key(OPS));
    let call = |path: &str, who: &str, body: &str| served.http("POST", path, who, body).0;
    assert_eq!(
        call("/v1/tools/calc/apply", &desk, r#"{"op":"add","a":1,"b":2}"#),
        200
    );
    assert_eq!(
        call("/v1/tools/calc/apply", &desk, r#"{"op":"div","a":1,"b":0}"#),
        200
    );
    assert_eq!(call("/v1/tools/hostile/spin", &desk, "{}"), 200);
    assert_eq!(call("/v1/tools/tickets/list", &key(VIEWER), "{}"), 403);
    assert_eq!(served.http("GET", "/metrics", &desk, "").0, 403);

    let scrape = || {
        let (status, text) = served.http("GET", "/metrics", &ops, "");
        assert_eq!(status, 200, "{text}");
        text
    };
    let text = scrape();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (_, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("a sample: {line}"));
        assert!(value.parse::<f64>().is_ok(), "a number ends {line}");
    }
    let calls = |outcome: &str, tool: &str, function: &str| {
        sample(
            &text,
            &format!(
                "harness_tool_calls_total{{function=\"{function}\",outcome=\"{outcome}\",tool=\"{tool}\"}}"
            ),
        )
    };
    assert_eq!(calls("ok", "calc", "apply"), Some(1.0), "{text}");
    assert_eq!(calls("tool_error", "calc", "apply"), Some(1.0), "{text}");
    assert_eq!(calls("out_of_fuel", "hostile", "spin"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "harness_stops_total{kind=\"out_of_fuel\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "harness_refusals_total{gate=\"role\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "harness_calls_in_flight"), Some(0.0));
    assert_eq!(sample(&text, "harness_pending_approvals"), Some(0.0));
    assert_eq!(
        sample(&text, "harness_tool_call_seconds_count{tool=\"calc\"}"),
        Some(2.0)
    );

    // A broken whitelist is refused, and counted.
    let policy = tmp.path().join("harness.toml");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("\n[tools.broken]\n");
    std::fs::write(&policy, text).unwrap();
    let started = std::time::Instant::now();
    while sample(&scrape(), "harness_reloads_total{result=\"failed\"}").is_none() {
        assert!(
            started.elapsed().as_secs() < 20,
            "the failed reload is counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_api_refuses_requests_from_other_sites() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let desk = key(DESK);
    let (status, body) = served.http(
        "GET",
        "/v1/tools",
        &format!("{desk}Origin: https://evil.example\r\n"),
        "",
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(json(&body)["type"], "urn:harness:problem:foreign-origin");
    let (status, _) = served.http(
        "GET",
        "/v1/tools",
        &format!("{desk}Origin: http://{}\r\n", served.addr),
        "",
    );
    assert_eq!(status, 200, "the server's own origin");
}

#[test]
fn the_openapi_document_describes_the_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let (status, body) = served.http("GET", "/v1/openapi.json", "", "");
    assert_eq!(status, 200, "{body}");
    let document = json(&body);

    // Real answers fit the schemas the document gives them.
    let desk = key(DESK);
    let answer =
        |method: &str, path: &str, body: &str| json(&served.http(method, path, &desk, body).1);
    let tools = answer("GET", "/v1/tools", "");
    for tool in tools.as_array().unwrap() {
        conforms(&document, "ToolInfo", tool);
    }
    conforms(
        &document,
        "CallResult",
        &answer(
            "POST",
            "/v1/tools/calc/apply",
            r#"{"op":"add","a":1,"b":2}"#,
        ),
    );
    conforms(
        &document,
        "CallResult",
        &answer("POST", "/v1/tools/hostile/spin", "{}"),
    );
    let urgent = r#"{"title":"VPN down","body":"","priority":"urgent"}"#;
    conforms(
        &document,
        "CallResult",
        &answer("POST", "/v1/tools/tickets/create", urgent),
    );
    conforms(
        &document,
        "Problem",
        &answer("POST", "/v1/tools/nothing/here", "{}"),
    );
    let (_, approvals) = served.http("GET", "/v1/approvals", &key(LEAD), "");
    let approvals = json(&approvals);
    assert_eq!(approvals.as_array().map(Vec::len), Some(1), "{approvals}");
    conforms(&document, "ApprovalInfo", &approvals[0]);
    conforms(
        &document,
        "Problem",
        &answer("POST", "/v1/tools/calc/apply", "{"),
    );
    let mismatch = json!({"decision": "ran", "function": "calc.apply"});
    let mut root = document.clone();
    root["$ref"] = json!("#/components/schemas/CallResult");
    assert!(
        !jsonschema::validator_for(&root)
            .unwrap()
            .is_valid(&mismatch),
        "the check can fail"
    );

    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{document}"
    );
    let call = &document["paths"]["/v1/tools/{tool}/{function}"]["post"];
    for status in ["200", "202", "403", "404", "422", "429"] {
        assert!(call["responses"][status].is_object(), "{status} in {call}");
    }
    let schemas = &document["components"]["schemas"];
    for schema in ["ToolInfo", "CallResult", "Problem"] {
        assert!(schemas[schema].is_object(), "{schema} in {schemas}");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["client_key"]["scheme"], "bearer",
        "{document}"
    );
    let problem = &schemas["Problem"]["required"];
    assert_eq!(problem, &json!(["type", "title", "status", "detail"]));
}

/// Schemathesis (from PyPI, in `.venv`) generates requests from the OpenAPI document, valid and
/// invalid, for every operation, and checks each answer against it: statuses, content types,
/// schemas, and that valid requests are accepted and invalid ones refused. A fixed seed and a
/// bounded number of examples keep the run short and repeatable.
#[test]
fn schemathesis_finds_every_answer_as_the_openapi_document_says() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path());
    let st = harness_e2e::repo_root().join(".venv/bin/st");
    let output = std::process::Command::new(&st)
        .args(["run", &format!("http://{}/v1/openapi.json", served.addr)])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "20261203",
        ])
        .args(["--request-timeout", "30", "--no-color"])
        // Its cache of found failures stays out of the repository.
        .current_dir(tmp.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (scripts/setup.sh installs it): {e}",
                st.display()
            )
        });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers the document does not describe:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
