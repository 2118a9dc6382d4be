//! HTTP grants against a real C tool using `wasi:http` (tests/fixtures/c/httpprobe), and loopback
//! servers that count the connections reaching them: a refused request must fail inside the tool
//! *and* never connect, whatever the tool was told.

use std::path::Path;

use harness_e2e::http_server::{HttpServer, chunked_response, response};
use harness_e2e::{PolicyFile, c_fixture};
use harness_host::capabilities::Capability;
use harness_host::{CallContext, CallReport, Host, Outcome, Policy};
use serde_json::{Value, json};

/// The secret the whitelist injects in these tests, as the host's environment would hold it.
const SECRET: &str = "Bearer s3cret-0f-the-h0st";

fn load(dir: &Path, policy: PolicyFile) -> Host {
    let path = policy.write(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |name: &str| (name == "PROBE_TOKEN").then(|| SECRET.to_owned());
    Host::load(Policy::parse_with_env(&text, &path, &env).unwrap()).unwrap()
}

/// A whitelist with tool `name` running httpprobe with `grants`.
fn policy(dir: &Path, tools: &[(&str, &str)]) -> PolicyFile {
    let probe = c_fixture("httpprobe");
    tools
        .iter()
        .fold(PolicyFile::new(&dir.join("cache")), |p, (name, grants)| {
            p.tool(name, &probe, grants)
        })
}

/// One request the probe sends.
struct Request<'a> {
    method: &'a str,
    scheme: &'a str,
    authority: String,
    path: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: String,
}

fn get(authority: impl Into<String>, path: &str) -> Request<'_> {
    Request {
        method: "GET",
        scheme: "http",
        authority: authority.into(),
        path,
        headers: vec![],
        body: String::new(),
    }
}

async fn fetch(host: &Host, tool: &str, request: &Request<'_>) -> CallReport {
    let args = json!({
        "method": request.method,
        "scheme": request.scheme,
        "authority": request.authority,
        "path": request.path,
        "headers": request.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": request.body,
    });
    host.call(
        &format!("{tool}.fetch"),
        &args.to_string(),
        &CallContext::new("tester", "run-http"),
    )
    .await
    .unwrap()
}

/// The response the tool returned.
fn answered(report: &CallReport) -> &Value {
    match &report.outcome {
        Outcome::Ok { value } => value,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The error the tool returned.
fn failed(report: &CallReport) -> String {
    match &report.outcome {
        Outcome::ToolError { error } => error.as_str().unwrap().to_owned(),
        other => panic!("expected the request to fail, got {}", other.kind()),
    }
}

/// The HTTP denials of a call, as text.
fn http_denials(report: &CallReport) -> Vec<String> {
    report
        .denials
        .iter()
        .map(|d| {
            assert_eq!(d.capability, Capability::Http);
            d.target.clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_granted_target_answers_and_nothing_else_is_reached() {
    let granted = HttpServer::ok("hello from the granted server");
    let other = HttpServer::ok("should never be reached");
    let v6 = HttpServer::start_on("[::1]:0", |_| response(200, &[], b"v6"));
    let tmp = tempfile::tempdir().unwrap();
    let grant = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}/api", methods = ["GET"] }}]"#,
        granted.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grant)]));
    let at = |port: u16| format!("127.0.0.1:{port}");

    let ok = fetch(&host, "probe", &get(at(granted.port()), "/api/items?x=1")).await;
    let value = answered(&ok);
    assert_eq!(value["status"], 200);
    assert_eq!(value["body"], "hello from the granted server");
    assert!(ok.denials.is_empty());
    assert_eq!(
        granted.requests()[0].request_line(),
        "GET /api/items?x=1 HTTP/1.1"
    );
    assert_eq!(granted.connections(), 1);

    let refused: Vec<(Request, &str)> = vec![
        (
            get(at(other.port()), "/api"),
            "no grant for http://127.0.0.1:",
        ),
        (
            get(format!("localhost:{}", granted.port()), "/api"),
            "no grant for http://localhost:",
        ),
        (
            Request {
                scheme: "https",
                ..get(at(granted.port()), "/api")
            },
            "no grant for https://127.0.0.1:",
        ),
        (
            Request {
                method: "DELETE",
                ..get(at(granted.port()), "/api/items")
            },
            "method DELETE is not granted",
        ),
        (
            get(at(granted.port()), "/admin"),
            "path `/admin` is outside the granted /api",
        ),
        (
            get(at(granted.port()), "/api/../admin"),
            "path `/admin` is outside",
        ),
        (get(at(granted.port()), "/apiary"), "outside"),
        (
            get("169.254.169.254", "/latest/meta-data/"),
            "no grant for http://169.254.169.254:80",
        ),
        (get("10.0.0.1", "/"), "no grant for http://10.0.0.1:80"),
        (
            get(format!("[::1]:{}", v6.port()), "/api"),
            "no grant for http://[::1]:",
        ),
        (
            get(format!("user:pw@127.0.0.1:{}", granted.port()), "/api"),
            "credentials",
        ),
    ];
    for (request, says) in &refused {
        let report = fetch(&host, "probe", request).await;
        assert_eq!(failed(&report), "response: HTTP-request-denied", "{says}");
        let denials = http_denials(&report);
        assert_eq!(denials.len(), 1, "{says}: {denials:?}");
        assert!(denials[0].contains(says), "{says}: {denials:?}");
    }
    assert_eq!(
        other.connections(),
        0,
        "a refused request reached the other port"
    );
    assert_eq!(v6.connections(), 0, "a refused request reached [::1]");
    assert_eq!(
        granted.connections(),
        1,
        "a refused request reached the granted port"
    );

    // The host kept serving throughout.
    let again = fetch(&host, "probe", &get(at(granted.port()), "/api")).await;
    assert_eq!(answered(&again)["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_name_resolving_to_loopback_is_refused_without_connecting() {
    let server = HttpServer::ok("internal");
    let tmp = tempfile::tempdir().unwrap();
    let by_name = format!(
        r#"http = [{{ url = "http://localhost:{}", methods = ["GET"] }}]"#,
        server.port()
    );
    let internal = format!(
        r#"http = [{{ url = "http://localhost:{}", methods = ["GET"], internal = true }}]"#,
        server.port()
    );
    let host = load(
        tmp.path(),
        policy(tmp.path(), &[("named", &by_name), ("internal", &internal)]),
    );
    let request = get(format!("localhost:{}", server.port()), "/");

    let report = fetch(&host, "named", &request).await;
    assert_eq!(failed(&report), "response: destination-IP-prohibited");
    let denials = http_denials(&report);
    assert!(
        denials[0].contains("`localhost` resolves to") && denials[0].contains("(loopback)"),
        "{denials:?}"
    );
    assert_eq!(server.connections(), 0, "the rebinding request connected");

    // A grant that opts in to internal addresses reaches it.
    let report = fetch(&host, "internal", &request).await;
    assert_eq!(answered(&report)["body"], "internal");
    assert_eq!(server.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_responses_are_cut_with_a_clear_error() {
    let big = vec![b'x'; 2 << 20];
    let declared = {
        let big = big.clone();
        HttpServer::start(move |_| response(200, &[], &big))
    };
    let streamed = HttpServer::start(move |_| chunked_response(200, &big));
    let headers = HttpServer::start(|_| {
        let long = "h".repeat(100 << 10);
        response(200, &[("x-long", &long)], b"")
    });
    let tmp = tempfile::tempdir().unwrap();
    let grants = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET", "POST"] }},
                   {{ url = "http://127.0.0.1:{}", methods = ["GET"] }},
                   {{ url = "http://127.0.0.1:{}", methods = ["GET"] }}]
           http_limits = {{ response_body = "1 MiB", headers = "64 KiB", request_body = "64 KiB" }}
           memory = "32 MiB""#,
        declared.port(),
        streamed.port(),
        headers.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grants)]));

    let report = fetch(&host, "probe", &get(declared.addr().to_string(), "/")).await;
    assert_eq!(failed(&report), "response: HTTP-response-body-size");
    let report = fetch(&host, "probe", &get(streamed.addr().to_string(), "/")).await;
    // wasmtime-wasi-http 48 reports body errors as I/O errors without an error code; the
    // message is the host's.
    assert_eq!(
        failed(&report),
        "body: HTTP response body size exceeds limit: 1048576 bytes"
    );
    let report = fetch(&host, "probe", &get(headers.addr().to_string(), "/")).await;
    assert_eq!(
        failed(&report),
        "response: HTTP-response-header-section-size"
    );

    // The server waits for the declared 100 KiB, which the host never sends past its cap.
    let upload = Request {
        method: "POST",
        headers: vec![("content-length", "102400")],
        body: "u".repeat(100 << 10),
        ..get(declared.addr().to_string(), "/")
    };
    let report = fetch(&host, "probe", &upload).await;
    assert_eq!(failed(&report), "response: HTTP-request-body-size");
    assert!(
        declared
            .requests()
            .iter()
            .all(|r| !r.request_line().starts_with("POST")),
        "the server received the whole oversized upload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_returned_to_the_tool_not_followed() {
    let elsewhere = HttpServer::ok("followed");
    let location = format!("http://{}/", elsewhere.addr());
    let redirecting =
        HttpServer::start(move |_| response(302, &[("location", &location)], b"moved"));
    let tmp = tempfile::tempdir().unwrap();
    let grant = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET"] }}]"#,
        redirecting.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grant)]));

    let report = fetch(&host, "probe", &get(redirecting.addr().to_string(), "/")).await;
    assert_eq!(answered(&report)["status"], 302);
    assert_eq!(elsewhere.connections(), 0, "the host followed the redirect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sends_at_most_its_request_budget() {
    let server = HttpServer::ok("ok");
    let tmp = tempfile::tempdir().unwrap();
    let grant = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET"] }}]
           http_limits = {{ requests = 3 }}"#,
        server.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grant)]));

    let args =
        json!({"times": 5, "scheme": "http", "authority": server.addr().to_string(), "path": "/"});
    let report = host
        .call(
            "probe.fetch-times",
            &args.to_string(),
            &CallContext::new("tester", "run"),
        )
        .await
        .unwrap();
    assert_eq!(failed(&report), "after 3: response: HTTP-request-denied");
    assert!(http_denials(&report)[0].contains("already sent its 3 requests"));
    assert_eq!(server.connections(), 3);

    // The budget is per call: the next call starts again.
    let report = fetch(&host, "probe", &get(server.addr().to_string(), "/")).await;
    assert_eq!(answered(&report)["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_only_their_host_and_never_the_tool() {
    // Echoes the request head back, in the body and in a header.
    let echo = |bind: &str| {
        HttpServer::start_on(bind, |request| {
            let head = request.head.replace("\r\n", " | ");
            response(200, &[("x-echo", &head)], request.head.as_bytes())
        })
    };
    let with_secret = echo("127.0.0.1:0");
    let without = echo("[::1]:0");
    let tmp = tempfile::tempdir().unwrap();
    let grants = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET"] }},
                   {{ url = "http://[::1]:{}", methods = ["GET"] }}]
           secrets = {{ "127.0.0.1" = {{ header = "Authorization", value_from_env = "PROBE_TOKEN" }} }}"#,
        with_secret.port(),
        without.port(),
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grants)]));

    // The tool even tries to set the header itself; the host's value replaces it.
    let request = Request {
        headers: vec![("authorization", "guessed")],
        ..get(with_secret.addr().to_string(), "/")
    };
    let report = fetch(&host, "probe", &request).await;
    let sent = &with_secret.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(SECRET),
        "the host injects the secret"
    );
    assert!(!sent.head.contains("guessed"));
    let value = answered(&report);
    let body = value["body"].as_str().unwrap();
    assert!(body.contains("authorization: [redacted]"), "{body}");

    // Nowhere the tool or the audit trail can see holds the secret.
    let everything = format!("{report:?}");
    assert!(
        !everything.contains("s3cret"),
        "the secret leaked: {everything}"
    );
    assert!(report.logs.iter().any(|l| l.message.contains("[redacted]")));

    let env = host
        .call(
            "probe.environment",
            "{}",
            &CallContext::new("tester", "run"),
        )
        .await
        .unwrap();
    assert!(!format!("{env:?}").contains("s3cret"));

    // Another granted host does not get it.
    let report = fetch(
        &host,
        "probe",
        &get(format!("[::1]:{}", without.port()), "/"),
    )
    .await;
    assert_eq!(answered(&report)["status"], 200);
    assert_eq!(without.requests()[0].header("authorization"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungranted_tool_is_denied_at_each_request_or_refused_when_strict() {
    let server = HttpServer::ok("never");
    let tmp = tempfile::tempdir().unwrap();
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", "")]));
    let report = fetch(&host, "probe", &get(server.addr().to_string(), "/")).await;
    assert_eq!(failed(&report), "response: HTTP-request-denied");
    assert!(http_denials(&report)[0].contains("no grant for http://127.0.0.1:"));
    assert_eq!(server.connections(), 0);

    let strict = policy(tmp.path(), &[("probe", "strict = true")]).write(tmp.path());
    let error = Host::load(Policy::load(&strict).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("wasi:http/outgoing-handler"), "{error}");
}
