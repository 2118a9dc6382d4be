//! HTTP grants against a real C tool using `wasi:http` (tests/fixtures/c/httpprobe), and loopback
//! servers that count the connections reaching them: a refused request must fail inside the tool
//! *and* never connect, whatever the tool was told.

use std::path::Path;

use harness_e2e::http_server::{HttpServer, chunked_response, response};
use harness_e2e::{PolicyFile, c_fixture};
use harness_sandbox::Capability;
use harness_sandbox::{CallContext, CallReport, Host, Outcome, Policy};
use serde_json::{Value, json};

/// The secret the whitelist injects in these tests, as the host's environment would hold it.
const SECRET: &str = "Bearer s3cret-0f-the-h0st";

/// A second secret, spelled so that it can be a header name (`PROBE_KEY`).
const KEY: &str = "k3y-0f-the-h0st";

fn env(name: &str) -> Option<String> {
    match name {
        "PROBE_TOKEN" => Some(SECRET.to_owned()),
        "PROBE_KEY" => Some(KEY.to_owned()),
        _ => None,
    }
}

fn parse(dir: &Path, policy: PolicyFile) -> Result<Policy, harness_sandbox::PolicyError> {
    let path = policy.write(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    Policy::parse_with_env(&text, &path, &env)
}

fn load(dir: &Path, policy: PolicyFile) -> Host {
    Host::load(parse(dir, policy).unwrap()).unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_only_ever_sees_the_host_the_grant_names() {
    let server = HttpServer::ok("granted");
    let tmp = tempfile::tempdir().unwrap();
    let port = server.port();
    let grant = format!(r#"http = [{{ url = "http://127.0.0.1:{port}/api", methods = ["GET"] }}]"#);
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grant)]));

    // Other spellings of 127.0.0.1 and of the port: the grant matches their normalized form.
    for authority in [
        format!("2130706433:{port}"),
        format!("0x7f000001:{port}"),
        format!("127.1:{port}"),
        format!("0177.0.0.1:{port}"),
        format!("127.0.0.1.:{port}"),
        format!("127.0.0.1:0{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let report = fetch(&host, "probe", &get(authority.as_str(), "/api/x")).await;
        assert_eq!(answered(&report)["status"], 200, "{authority}");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 7);
    for request in &requests {
        assert_eq!(
            request.header("host"),
            Some(format!("127.0.0.1:{port}").as_str()),
            "{}",
            request.head
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_with_parameters_and_queries_stay_out() {
    let server = HttpServer::ok("granted");
    let tmp = tempfile::tempdir().unwrap();
    let grant = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}/api", methods = ["GET"] }}]"#,
        server.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grant)]));
    for path in [
        "/api/..;/admin",
        "/api/x/..;/..;/admin",
        "/api/%2e%2e;/admin",
    ] {
        let report = fetch(&host, "probe", &get(server.addr().to_string(), path)).await;
        assert_eq!(failed(&report), "response: HTTP-request-denied", "{path}");
    }
    assert_eq!(server.connections(), 0, "a `..;` path reached the server");

    // A denial record names the request without its query, which may hold a token.
    let report = fetch(
        &host,
        "probe",
        &get(server.addr().to_string(), "/admin?token=t0ken-in-query"),
    )
    .await;
    let denials = http_denials(&report);
    assert!(denials[0].contains("/admin?[query omitted]"), "{denials:?}");
    assert!(!format!("{report:?}").contains("t0ken-in-query"));
}

/// A chunked response: each of `chunks` after a pause of `pause`, then `trailers` if any.
fn stream_chunks(
    stream: &mut std::net::TcpStream,
    chunks: &[&[u8]],
    pause: std::time::Duration,
    trailers: Option<&str>,
) {
    use std::io::Write;
    let mut head =
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n".to_owned();
    if trailers.is_some() {
        head.push_str("trailer: x-checksum\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    for chunk in chunks {
        std::thread::sleep(pause);
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        let _ = stream.write_all(&frame);
        let _ = stream.flush();
    }
    let end = format!("0\r\n{}\r\n", trailers.unwrap_or(""));
    let _ = stream.write_all(end.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_keeps_the_body_whole_before_trailers_and_when_slow() {
    let trailing = HttpServer::streaming(|_, stream| {
        stream_chunks(
            stream,
            &[b"trailer-", b"follows;end"],
            std::time::Duration::ZERO,
            Some("x-checksum: 1\r\n"),
        );
    });
    // The secret echoed one byte per chunk, 20 ms apart.
    let slow = HttpServer::streaming(|_, stream| {
        let text = format!("before {SECRET} after");
        let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        stream_chunks(stream, &bytes, std::time::Duration::from_millis(20), None);
    });
    let tmp = tempfile::tempdir().unwrap();
    let grants = |port: u16| {
        format!(
            r#"http = [{{ url = "http://127.0.0.1:{port}", methods = ["GET"] }}]
               secrets = {{ "127.0.0.1" = {{ header = "Authorization", value_from_env = "PROBE_TOKEN" }} }}
               timeout = "10s""#
        )
    };
    let host = load(
        tmp.path(),
        policy(
            tmp.path(),
            &[
                ("trailing", &grants(trailing.port())),
                ("slow", &grants(slow.port())),
            ],
        ),
    );

    let report = fetch(&host, "trailing", &get(trailing.addr().to_string(), "/")).await;
    assert_eq!(answered(&report)["body"], "trailer-follows;end");

    let report = fetch(&host, "slow", &get(slow.addr().to_string(), "/")).await;
    assert_eq!(answered(&report)["body"], "before [redacted] after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_as_a_header_name_is_dropped_and_recorded() {
    let server = HttpServer::start(|request| {
        let echoed = format!("x-{}", request.header("x-api-key").unwrap_or("none"));
        response(200, &[(&echoed, "1"), ("x-plain", "kept")], b"ok")
    });
    let tmp = tempfile::tempdir().unwrap();
    let grants = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET"] }}]
           secrets = {{ "127.0.0.1" = {{ header = "X-Api-Key", value_from_env = "PROBE_KEY" }} }}"#,
        server.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grants)]));
    let report = fetch(&host, "probe", &get(server.addr().to_string(), "/")).await;
    assert_eq!(server.requests()[0].header("x-api-key"), Some(KEY));
    let headers = &answered(&report)["headers"];
    assert!(
        !headers.to_string().contains(KEY),
        "the key reached the tool: {headers}"
    );
    assert!(headers.to_string().contains("x-plain"), "{headers}");
    let denials = http_denials(&report);
    assert!(
        denials[0].contains("dropped 1 response header(s) whose name holds the host's secret"),
        "{denials:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_goes_only_to_the_origin_it_is_keyed_by() {
    let keyed = HttpServer::start(|request| {
        response(
            200,
            &[],
            request.header("authorization").unwrap_or("none").as_bytes(),
        )
    });
    let other_port = HttpServer::start(|request| {
        response(
            200,
            &[],
            request.header("authorization").unwrap_or("none").as_bytes(),
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let two_ports = format!(
        r#"http = [{{ url = "http://127.0.0.1:{}", methods = ["GET"] }},
                   {{ url = "http://127.0.0.1:{}", methods = ["GET"] }}]"#,
        keyed.port(),
        other_port.port()
    );
    let grants = format!(
        r#"{two_ports}
           secrets = {{ "http://127.0.0.1:{}" = {{ header = "Authorization", value_from_env = "PROBE_TOKEN" }} }}"#,
        keyed.port()
    );
    let host = load(tmp.path(), policy(tmp.path(), &[("probe", &grants)]));
    let report = fetch(&host, "probe", &get(keyed.addr().to_string(), "/")).await;
    assert_eq!(answered(&report)["body"], "[redacted]");
    let report = fetch(&host, "probe", &get(other_port.addr().to_string(), "/")).await;
    assert_eq!(answered(&report)["body"], "none");
    assert_eq!(other_port.requests()[0].header("authorization"), None);

    // A bare host granted on two ports is ambiguous, and a named host over plain HTTP needs
    // `insecure = true`.
    let ambiguous = format!(
        r#"{two_ports}
           secrets = {{ "127.0.0.1" = {{ header = "Authorization", value_from_env = "PROBE_TOKEN" }} }}"#
    );
    let error = parse(tmp.path(), policy(tmp.path(), &[("probe", &ambiguous)]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("tools.probe.secrets.\"127.0.0.1\"") && error.contains("several origins"),
        "{error}"
    );
    let named = |extra: &str| {
        format!(
            r#"http = [{{ url = "http://localhost:{}", methods = ["GET"], internal = true }}]
               secrets = {{ "localhost" = {{ header = "Authorization", value_from_env = "PROBE_TOKEN"{extra} }} }}"#,
            keyed.port()
        )
    };
    let error = parse(tmp.path(), policy(tmp.path(), &[("probe", &named(""))]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("plain HTTP"), "{error}");
    let host = load(
        tmp.path(),
        policy(tmp.path(), &[("probe", &named(", insecure = true"))]),
    );
    let report = fetch(
        &host,
        "probe",
        &get(format!("localhost:{}", keyed.port()), "/"),
    )
    .await;
    assert_eq!(answered(&report)["body"], "[redacted]");
}
