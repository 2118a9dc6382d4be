//! Socket grants against a real C tool using `wasi:sockets`: without a grant a socket cannot
//! even be created; with one, only the granted address is reached. Loopback listeners count the
//! connections that actually arrived, so a leak fails the test even if the guest is fooled.

use std::net::{SocketAddr, TcpListener};

use harness_e2e::{PolicyFile, c_fixture};
use harness_sandbox::Capability;
use harness_sandbox::Denial;
use harness_sandbox::{CallContext, CallReport, Host, Outcome, Policy};
use serde_json::json;

/// A loopback listener that can tell how many connections reached it.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self(listener)
    }

    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }

    /// Connections that completed since the last count (the kernel queues them until accepted).
    fn arrived(&self) -> usize {
        std::iter::from_fn(|| self.0.accept().ok()).count()
    }
}

async fn connect(host: &Host, tool: &str, ip: [u8; 4], port: u16) -> CallReport {
    host.call(
        &format!("{tool}.connect"),
        &json!({"ip": ip, "port": port}).to_string(),
        &CallContext::new("tester", "run-sockets"),
    )
    .await
    .unwrap()
}

fn tool_error(report: &CallReport) -> String {
    match &report.outcome {
        Outcome::ToolError { error } => error.as_str().unwrap().to_owned(),
        other => panic!("expected the connection to be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_granted_address_is_reached() {
    let granted = Listener::new();
    let other = Listener::new();
    let tmp = tempfile::tempdir().unwrap();
    let probe = c_fixture("netprobe");
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool(
            "granted",
            &probe,
            &format!(
                "sockets = [{{ addr = \"{}\", use = [\"connect\"] }}]",
                granted.addr()
            ),
        )
        .tool("ungranted", &probe, "")
        .write(tmp.path());
    let host = Host::load(Policy::load(policy).unwrap()).unwrap();
    let (port, other_port) = (granted.addr().port(), other.addr().port());

    let report = connect(&host, "granted", [127, 0, 0, 1], port).await;
    assert_eq!(report.outcome, Outcome::Ok { value: json!(null) });
    assert!(report.denials.is_empty());
    assert_eq!(granted.arrived(), 1);

    for (ip, port) in [
        ([127, 0, 0, 1], other_port),
        ([10, 0, 0, 1], port),
        ([169, 254, 169, 254], 80),
        ([127, 0, 0, 2], port),
    ] {
        let report = connect(&host, "granted", ip, port).await;
        // wasmtime-wasi checks the address while connecting, so the guest hears at finish-connect.
        assert_eq!(tool_error(&report), "finish-connect: access-denied");
        let target = format!("tcp connect {}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]);
        assert_eq!(
            report.denials,
            vec![Denial {
                capability: Capability::Sockets,
                target
            }]
        );
    }

    let report = connect(&host, "ungranted", [127, 0, 0, 1], port).await;
    assert_eq!(tool_error(&report), "create: access-denied");
    assert_eq!(
        report.denials,
        vec![Denial {
            capability: Capability::Sockets,
            target: "create tcp socket".into()
        }]
    );

    assert_eq!(granted.arrived(), 0, "no connection beyond the granted one");
    assert_eq!(other.arrived(), 0);
}
