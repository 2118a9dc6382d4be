//! Agent runs through `harness serve`'s `/v1/runs` over real HTTP, with scripted models and
//! real sandboxed tools: answered, streamed, in the background, paused and approved through
//! the API, read back from the audit log, judged, and for end users a client acts for.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use common::{Served, conforms};
use harness_e2e::{PolicyFile, example_tool, hostile};
use serde_json::{Value, json};

const APP: &str = "hk_app-key-for-run-tests";
const DESK: &str = "hk_desk-key-for-run-tests";
const LEAD: &str = "hk_lead-key-for-run-tests";

/// Asks calc for 6 × 7, then answers.
const CALC_SCRIPT: &str = r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}], "usage": {"input_tokens": 400, "output_tokens": 100}}
{"text": "6 × 7 = 42", "usage": {"input_tokens": 400, "output_tokens": 100}}
"#;

/// The whitelist of these tests: agent `math` over calc, agent `slow` whose second tool call
/// runs until its 1.5 s timeout, agent `clerk` whose ticket needs approval; client `app` acts
/// for its users, `desk` does not, `lead` approves.
fn served(tmp: &std::path::Path, extra: &str) -> Served {
    served_in(tmp, extra, &[])
}

/// [`served`] with environment variables set for the server.
fn served_in(tmp: &std::path::Path, extra: &str, env: &[(&str, &str)]) -> Served {
    let sha = |key: &str| harness_sandbox::Sha256Digest::of(key.as_bytes()).to_string();
    let policy = PolicyFile::new(&tmp.join("cache"))
        .data_dir(&tmp.join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\napproval = \"required\"",
        )
        .tool(
            "hostile",
            &hostile(),
            "fuel = 100_000_000_000\ntimeout = \"1500ms\"",
        )
        .scripted_agent(tmp, "math", CALC_SCRIPT, "max_output_tokens = 100")
        .scripted_agent(
            tmp,
            "slow",
            r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 2}}]}
{"calls": [{"name": "hostile__spin", "arguments": {}}]}
{"text": "1 + 2 = 3, and the spinner was stopped."}
"#,
            "",
        )
        .scripted_agent(
            tmp,
            "clerk",
            r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "VPN down", "body": "", "priority": "high"}}]}
{"text": "Ticket 1 is open."}
"#,
            "",
        )
        .raw(&format!(
            "[clients.app]\nkey_sha256 = \"{}\"\nroles = [\"support\", \"approver\"]\nact_for = true\nconcurrency = 128\n\n\
             [clients.desk]\nkey_sha256 = \"{}\"\nroles = [\"support\"]\n\n\
             [clients.lead]\nkey_sha256 = \"{}\"\nroles = [\"approver\", \"operator\"]\n\n{extra}",
            sha(APP),
            sha(DESK),
            sha(LEAD),
        ))
        .write(tmp);
    Served::start_in(&policy, &[], env)
}

fn key(key: &str) -> String {
    format!("Authorization: Bearer {key}\r\n")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `METHOD path` as `who` with a JSON `body`: the status and the JSON answer (`null` when
/// empty).
fn ask(served: &Served, method: &str, path: &str, who: &str, body: &str) -> (u16, Value) {
    let (status, body) = served.http(method, path, &key(who), body);
    let body = if body.is_empty() {
        Value::Null
    } else {
        json(&body)
    };
    (status, body)
}

/// Asserts `body` is the problem document of kind `kind` with `status`.
fn problem(status: u16, body: &Value, kind: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:harness:problem:{kind}"),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

/// Run `id` as `who` reads it, once its status is not `running` (or after 20 s).
fn settled(served: &Served, id: &str, who: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, run) = ask(served, "GET", &format!("/v1/runs/{id}"), who, "");
        assert_eq!(status, 200, "{run}");
        if run["status"] != "running" || started.elapsed() > Duration::from_secs(20) {
            return run;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kinds(run: &Value) -> Vec<String> {
    run["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_run_answers_with_its_report_and_is_read_back_and_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path(), "");
    let run = r#"{"agent": "math", "input": "What is 6 times 7?"}"#;
    let (status, report) = ask(&served, "POST", "/v1/runs", DESK, run);
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["status"], &report["answer"], &report["principal"]),
        (&json!("answered"), &json!("6 × 7 = 42"), &json!("desk"))
    );
    assert_eq!(
        (&report["turns"], &report["input_tokens"]),
        (&json!(2), &json!(800))
    );
    let events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["model", "call", "model"], "{report}");
    assert_eq!(report["events"][1]["result"]["content"], "42.0");
    let id = report["run_id"].as_str().unwrap().to_owned();

    let (status, read) = ask(&served, "GET", &format!("/v1/runs/{id}"), DESK, "");
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        (&read["status"], &read["answer"], &read["agent"]),
        (&json!("answered"), &json!("6 × 7 = 42"), &json!("math"))
    );
    let kinds = kinds(&read);
    for kind in ["run.started", "model.responded", "tool.called", "run.ended"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
    assert_eq!(read["prompt_version"], report["prompt_version"]);

    let (status, page) = ask(&served, "GET", "/v1/runs", DESK, "");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["runs"][0]["run_id"], id.as_str(), "{page}");
    assert_eq!(page["next"], Value::Null);

    let feedback = format!("/v1/runs/{id}/feedback");
    let (status, given) = ask(
        &served,
        "POST",
        &feedback,
        DESK,
        r#"{"score": 1, "comment": "right, thanks (ana@example.com)"}"#,
    );
    assert_eq!(status, 201, "{given}");
    assert_eq!(
        (&given["author"], &given["score"]),
        (&json!("desk"), &json!(1.0))
    );
    assert!(
        !given["comment"]
            .as_str()
            .unwrap()
            .contains("ana@example.com"),
        "the comment is masked: {given}"
    );
    let (status, body) = ask(&served, "POST", &feedback, DESK, r#"{"score": 0}"#);
    assert_eq!(status, 409);
    problem(409, &body, "feedback-given");
    let (status, body) = ask(&served, "POST", &feedback, LEAD, r#"{"score": 2}"#);
    assert_eq!(status, 422);
    problem(422, &body, "invalid-score");
    let (status, _) = ask(&served, "POST", &feedback, LEAD, r#"{"score": 0.5}"#);
    assert_eq!(status, 201, "another author");
    let (_, read) = ask(&served, "GET", &format!("/v1/runs/{id}"), DESK, "");
    let judged = read["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "run.feedback")
        .count();
    assert_eq!(judged, 2, "once per author, in the chain: {read}");

    // Every answer fits the schema the OpenAPI document gives it.
    let (_, document) = ask(&served, "GET", "/v1/openapi.json", DESK, "");
    conforms(&document, "RunResult", &report);
    conforms(&document, "RunDetail", &read);
    conforms(&document, "RunPage", &page);
    conforms(&document, "FeedbackInfo", &given);
    conforms(&document, "Problem", &body);

    let (status, metrics) = ask(&served, "GET", "/v1/metrics", LEAD, "");
    assert_eq!(status, 200, "{metrics}");
    let prompt = &metrics["prompts"][0];
    assert_eq!(
        (&prompt["version"], &prompt["runs"], &prompt["feedback"]),
        (&report["prompt_version"], &json!(1), &json!(2)),
        "{metrics}"
    );
    assert_eq!(prompt["mean_score"], 0.75);
    assert_eq!(prompt["canary"], false);
    let (status, text) = served.http("GET", "/metrics", &key(LEAD), "");
    assert_eq!(status, 200);
    let labels = format!(
        "{{agent=\"math\",canary=\"false\",prompt_version={}}}",
        report["prompt_version"]
    );
    for (series, value) in [
        ("harness_run_feedback_total", "2"),
        ("harness_run_feedback_score_sum", "1.5"),
    ] {
        assert!(
            text.lines()
                .any(|l| l == format!("{series}{labels} {value}")),
            "{series}{labels} {value} in {text}"
        );
    }

    let (status, body) = ask(
        &served,
        "POST",
        "/v1/runs",
        DESK,
        r#"{"agent": "nobody", "input": "hi"}"#,
    );
    assert_eq!(status, 404);
    problem(404, &body, "unknown-agent");
    assert!(body["detail"].as_str().unwrap().contains("math"), "{body}");
    let (status, body) = ask(&served, "POST", "/v1/runs", DESK, r#"{"agent": "math""#);
    assert_eq!(status, 400);
    problem(400, &body, "invalid-body");
    let (status, body) = ask(
        &served,
        "POST",
        "/v1/runs",
        DESK,
        r#"{"agent": "math", "input": "hi", "extra": 1}"#,
    );
    assert_eq!(status, 422, "{body}");
    problem(422, &body, "invalid-body");
    let big = format!(r#"{{"agent": "math", "input": "{}"}}"#, "a".repeat(2 << 20));
    let (status, body) = ask(&served, "POST", "/v1/runs", DESK, &big);
    assert_eq!(status, 413, "{body}");
    problem(413, &body, "invalid-body");
    let (status, body) = ask(&served, "GET", "/v1/runs/run-nothing", DESK, "");
    assert_eq!(status, 404);
    problem(404, &body, "unknown-run");
    let (status, body) = ask(&served, "GET", "/v1/runs?status=finished", DESK, "");
    assert_eq!(status, 400);
    problem(400, &body, "invalid-query");
}

#[test]
fn a_client_acts_for_end_users_only_when_its_entry_allows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path(), "");
    let for_bob = r#"{"agent": "math", "input": "6 × 7?", "principal": "bob"}"#;
    let (status, body) = ask(&served, "POST", "/v1/runs", DESK, for_bob);
    assert_eq!(status, 403);
    problem(403, &body, "may-not-act-for");
    assert!(
        body["detail"].as_str().unwrap().contains("act_for = true"),
        "{body}"
    );

    let (status, report) = ask(&served, "POST", "/v1/runs", APP, for_bob);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["principal"], "bob");
    let id = report["run_id"].as_str().unwrap();
    let (status, body) = ask(
        &served,
        "POST",
        "/v1/runs",
        APP,
        r#"{"agent": "math", "input": "hi", "principal": "bob", "roles": ["admin"]}"#,
    );
    assert_eq!(status, 403);
    problem(403, &body, "role-not-held");

    // Bob's run is his: `desk` neither reads nor lists it; `app`, acting for users, does.
    let (status, body) = ask(&served, "GET", &format!("/v1/runs/{id}"), DESK, "");
    assert_eq!(status, 403);
    problem(403, &body, "not-yours");
    let (status, page) = ask(&served, "GET", "/v1/runs", DESK, "");
    assert_eq!((status, &page["runs"]), (200, &json!([])));
    let (status, body) = ask(&served, "GET", "/v1/runs?principal=bob", DESK, "");
    assert_eq!(status, 403);
    problem(403, &body, "not-yours");
    let (status, page) = ask(
        &served,
        "GET",
        "/v1/runs?principal=bob&status=answered",
        APP,
        "",
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["runs"][0]["run_id"], id);

    // Feedback is bob's when the app gives it for him.
    let (status, given) = ask(
        &served,
        "POST",
        &format!("/v1/runs/{id}/feedback"),
        APP,
        r#"{"score": 0, "principal": "bob"}"#,
    );
    assert_eq!((status, &given["author"]), (201, &json!("bob")), "{given}");

    // Pages: one run per page, each page's `next` leading to the one before.
    let (_, second) = ask(&served, "POST", "/v1/runs", APP, for_bob);
    let (_, first_page) = ask(&served, "GET", "/v1/runs?principal=bob&limit=1", APP, "");
    assert_eq!(first_page["runs"][0]["run_id"], second["run_id"]);
    let next = first_page["next"].as_str().unwrap().to_owned();
    let (_, next_page) = ask(&served, "GET", &next, APP, "");
    assert_eq!(next_page["runs"][0]["run_id"], id, "{next_page}");
    let (_, last) = ask(&served, "GET", next_page["next"].as_str().unwrap(), APP, "");
    assert_eq!(last["runs"], json!([]), "{last}");
    let (_, recent) = ask(&served, "GET", "/v1/runs?principal=bob&within=1h", APP, "");
    assert_eq!(recent["runs"].as_array().unwrap().len(), 2, "{recent}");
    let (_, future) = ask(
        &served,
        "GET",
        "/v1/runs?principal=bob&since=2999-01-01T00:00:00%2B01:00",
        APP,
        "",
    );
    assert_eq!(future["runs"], json!([]));
}

/// One Server-Sent Event: its name and its JSON data.
#[derive(Debug)]
struct SseEvent {
    name: String,
    data: Value,
}

#[test]
fn a_streamed_run_delivers_its_steps_in_order_before_it_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path(), "");
    let body = r#"{"agent": "slow", "input": "Add 1 and 2, then spin."}"#;
    let mut stream = std::net::TcpStream::connect(served.addr).unwrap();
    write!(
        stream,
        "POST /v1/runs HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: text/event-stream\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
        served.addr,
        body.len(),
        key(DESK)
    )
    .unwrap();
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut events = Vec::new();
    let mut name = None;
    let mut status_after_first_call = None;
    for line in lines {
        let line = line.unwrap();
        if let Some(event) = line.strip_prefix("event: ") {
            name = Some(event.to_owned());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let event = SseEvent {
                name: name.take().unwrap(),
                data: json(data),
            };
            // The first tool call's step comes while the run still runs: the second call spins
            // until its timeout.
            if event.data["event"] == "call" && status_after_first_call.is_none() {
                let id = events
                    .first()
                    .map(|e: &SseEvent| e.data["run_id"].as_str().unwrap().to_owned())
                    .unwrap();
                let (_, run) = ask(&served, "GET", &format!("/v1/runs/{id}"), DESK, "");
                status_after_first_call = Some(run["status"].clone());
            }
            let end = event.name == "end";
            events.push(event);
            if end {
                break;
            }
        }
    }
    let names: Vec<String> = events
        .iter()
        .map(|e| match e.data["event"].as_str() {
            Some(step) => format!("{}:{step}", e.name),
            None => e.name.clone(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "run",
            "step:model",
            "step:call",
            "step:model",
            "step:call",
            "step:model",
            "end"
        ],
        "{events:?}"
    );
    assert_eq!(status_after_first_call, Some(json!("running")));
    let end = &events.last().unwrap().data;
    assert_eq!(end["status"], "answered", "{end}");
    let streamed: Vec<&Value> = events[1..events.len() - 1]
        .iter()
        .map(|e| &e.data)
        .collect();
    let reported: Vec<&Value> = end["events"].as_array().unwrap().iter().collect();
    assert_eq!(streamed, reported, "the stream is the report's steps");
    assert_eq!(
        events[4].data["decision"]["report"]["outcome"]["stop"]["reason"], "timed_out",
        "{:?}",
        events[4]
    );
}

#[test]
fn a_background_run_paused_for_approval_is_approved_through_the_api_and_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let served = served(tmp.path(), "");
    let (status, accepted) = ask(
        &served,
        "POST",
        "/v1/runs",
        APP,
        r#"{"agent": "clerk", "input": "Open a ticket: VPN down.", "principal": "ana", "wait": false}"#,
    );
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["run_id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["location"], format!("/v1/runs/{id}"));
    let run = settled(&served, &id, APP);
    assert_eq!(run["status"], "paused", "{run}");

    let (_, pending) = ask(&served, "GET", "/v1/approvals", LEAD, "");
    assert_eq!(pending[0]["run_id"], id.as_str(), "{pending}");
    let approval = pending[0]["id"].as_i64().unwrap();
    let approve = format!("/v1/approvals/{approval}/approve");
    let (status, body) = ask(&served, "POST", &approve, DESK, "{}");
    assert_eq!(status, 403, "desk is no approver");
    problem(403, &body, "missing-role");
    // The app decides as its staff user, who is the decider of record.
    let (status, decided) = ask(
        &served,
        "POST",
        &approve,
        APP,
        r#"{"reason": "looks right", "principal": "sam"}"#,
    );
    assert_eq!(status, 200, "{decided}");
    assert_eq!(
        (&decided["decided_by"], &decided["resumed"]),
        (&json!("sam"), &json!(true))
    );
    let (_, document) = ask(&served, "GET", "/v1/openapi.json", APP, "");
    conforms(&document, "Decided", &decided);
    conforms(&document, "RunAccepted", &accepted);

    let run = settled(&served, &id, APP);
    assert_eq!(
        (&run["status"], &run["answer"]),
        (&json!("answered"), &json!("Ticket 1 is open.")),
        "{run}"
    );
    let kinds = kinds(&run);
    let at = |kind: &str| kinds.iter().position(|k| k == kind).unwrap_or(usize::MAX);
    assert!(
        at("run.paused") < at("approval.approved")
            && at("approval.approved") < at("run.resumed")
            && at("run.resumed") < at("tool.called")
            && at("tool.called") < at("run.ended"),
        "{kinds:?}"
    );
    let (status, body) = ask(&served, "POST", &approve, APP, "{}");
    assert_eq!(status, 409);
    problem(409, &body, "decided");
}

#[test]
fn concurrent_runs_for_one_end_user_never_overspend_their_budget() {
    let tmp = tempfile::tempdir().unwrap();
    // A run uses 1,000 tokens (two turns of 500): the budget covers at most 20 of them.
    let served = served(tmp.path(), "[budgets]\nuser_tokens = \"20000/day\"\n");
    let for_bob = r#"{"agent": "math", "input": "What is 6 times 7?", "principal": "bob"}"#;
    let statuses: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..100)
            .map(|_| {
                scope.spawn(|| {
                    let (status, report) = ask(&served, "POST", "/v1/runs", APP, for_bob);
                    assert_eq!(status, 200, "{report}");
                    report["status"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let answered = statuses.iter().filter(|s| *s == "answered").count();
    assert!(
        statuses
            .iter()
            .all(|s| s == "answered" || s == "budget_exhausted"),
        "{statuses:?}"
    );
    assert!((1..=20).contains(&answered), "{answered} answered");
    let (_, budgets) = ask(&served, "GET", "/v1/budgets", LEAD, "");
    let bob = budgets
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == "tokens:user:bob")
        .unwrap_or_else(|| panic!("bob's tokens are counted: {budgets}"));
    assert!(bob["spent"].as_u64().unwrap() <= 20_000, "{bob}");
    assert!(
        bob["spent"].as_u64().unwrap() >= 1_000 * answered as u64,
        "{bob}"
    );

    let (status, text) = served.http("GET", "/metrics", &key(LEAD), "");
    assert_eq!(status, 200);
    let sample = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse::<f64>().ok())
    };
    assert_eq!(
        sample("harness_runs_total{agent=\"math\",status=\"answered\"}"),
        Some(answered as f64),
        "{text}"
    );
    assert_eq!(
        sample("harness_run_seconds_count{agent=\"math\"}"),
        Some(100.0),
        "{text}"
    );
    assert!(
        text.contains(
            "harness_model_tokens_total{agent=\"math\",direction=\"input\",model=\"math-script\""
        ),
        "{text}"
    );
}

/// The spans an OTLP receiver got, decoded from the protobuf export.
fn spans(bodies: &[Vec<u8>]) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    bodies
        .iter()
        .flat_map(|body| {
            ExportTraceServiceRequest::decode(body.as_slice())
                .unwrap()
                .resource_spans
        })
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .collect()
}

/// A span's string (or integer, as text) attribute `key`.
fn attribute(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    match value {
        Any::StringValue(text) => Some(text.clone()),
        Any::IntValue(number) => Some(number.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[test]
fn traces_reach_an_otlp_receiver_named_attributed_and_parented() {
    use harness_e2e::http_server::{HttpServer, response};
    use std::sync::{Arc, Mutex};
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let receiver = {
        let bodies = bodies.clone();
        HttpServer::start(move |request| {
            if request.request_line().starts_with("POST /v1/traces") {
                bodies.lock().unwrap().push(request.body.clone());
            }
            response(200, &[("content-type", "application/x-protobuf")], b"")
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{}", receiver.addr());
    let served = served_in(
        tmp.path(),
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
        ],
    );

    // A run whose request carries a traceparent, and an MCP call with one in `_meta`.
    let (web_trace, web_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let (status, report) = {
        let (status, body) = served.http(
            "POST",
            "/v1/runs",
            &format!("{}traceparent: 00-{web_trace}-{web_span}-01\r\n", key(DESK)),
            r#"{"agent": "math", "input": "My mail is ana@example.com. What is 6 times 7?"}"#,
        );
        (status, json(&body))
    };
    assert_eq!(status, 200, "{report}");
    let (mcp_trace, mcp_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let call = served.post(
        &format!(
            "{}MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: calc__apply\r\n",
            key(DESK)
        ),
        &format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"calc__apply","arguments":{{"op":"add","a":1,"b":2}},"_meta":{{"traceparent":"00-{mcp_trace}-{mcp_span}-01","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{{"name":"raw","version":"1"}}}}}}}}"#
        ),
    );
    assert!(call.starts_with("HTTP/1.1 200"), "{call}");

    let started = Instant::now();
    let spans = loop {
        let spans = spans(&bodies.lock().unwrap());
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        if names.contains(&"tools/call calc__apply") && names.contains(&"invoke_agent math") {
            break spans;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "spans so far: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let named = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "a span {name}: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();

    // The run: the request's span under the web app's, the agent's under it, its model calls
    // and tool call under the agent's, all in the web app's trace.
    let http = named("POST /v1/runs");
    assert_eq!(
        (hex(&http.trace_id), hex(&http.parent_span_id)),
        (web_trace.to_owned(), web_span.to_owned())
    );
    let agent = named("invoke_agent math");
    assert_eq!(agent.parent_span_id, http.span_id);
    assert_eq!(
        attribute(agent, "gen_ai.operation.name").as_deref(),
        Some("invoke_agent")
    );
    assert_eq!(
        attribute(agent, "gen_ai.agent.name").as_deref(),
        Some("math")
    );
    assert_eq!(
        attribute(agent, "gen_ai.conversation.id"),
        report["run_id"].as_str().map(str::to_owned)
    );
    assert_eq!(
        attribute(agent, "harness.run.status").as_deref(),
        Some("answered")
    );
    let chats: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "chat math-script")
        .collect();
    assert_eq!(chats.len(), 2, "two model turns");
    for chat in &chats {
        assert_eq!(chat.parent_span_id, agent.span_id);
        assert_eq!(hex(&chat.trace_id), web_trace);
        assert_eq!(
            attribute(chat, "gen_ai.operation.name").as_deref(),
            Some("chat")
        );
        assert_eq!(
            attribute(chat, "gen_ai.provider.name").as_deref(),
            Some("scripted")
        );
        assert_eq!(
            attribute(chat, "gen_ai.usage.input_tokens").as_deref(),
            Some("400")
        );
    }
    let input = attribute(chats[0], "gen_ai.input.messages").expect("content is captured");
    assert!(
        !input.contains("ana@example.com"),
        "masked as the model sees it: {input}"
    );
    assert!(input.contains("What is 6 times 7?"), "{input}");
    let tool = spans
        .iter()
        .find(|s| s.name == "execute_tool calc.apply" && s.parent_span_id == agent.span_id)
        .expect("the run's tool call under its agent span");
    assert_eq!(attribute(tool, "harness.outcome").as_deref(), Some("ok"));

    // The MCP call: its span under the client's traceparent, the sandbox's under it.
    let mcp = named("tools/call calc__apply");
    assert_eq!(
        (hex(&mcp.trace_id), hex(&mcp.parent_span_id)),
        (mcp_trace.to_owned(), mcp_span.to_owned())
    );
    assert_eq!(
        attribute(mcp, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attribute(mcp, "gen_ai.tool.name").as_deref(),
        Some("calc__apply")
    );
    assert_eq!(attribute(mcp, "jsonrpc.request.id").as_deref(), Some("9"));
    assert!(
        spans
            .iter()
            .any(|s| s.name == "execute_tool calc.apply" && s.parent_span_id == mcp.span_id),
        "the sandbox call under the MCP span"
    );
}
