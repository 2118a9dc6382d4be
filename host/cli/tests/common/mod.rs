//! What the end-to-end tests of the `harness` binary share: one command's run, the server process,
//! and raw HTTP to it.

#![allow(dead_code)] // each test binary uses part of it

use std::path::Path;
use std::process::Command;

/// What one `harness` command did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `harness ARGS` to its end with `env` set (and the caller's RUST_LOG and HARNESS_AUDIT
/// unset, so its output is only what the command prints).
pub fn harness(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("HARNESS_AUDIT")
        .envs(env.iter().copied())
        .output()
        .expect("running harness");
    Run {
        code: output.status.code().expect("harness exited normally"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs the MCP Python SDK's client (`tests/mcp/client.py`) with `actions` against `url` with
/// `key`, in `mode` (`auto`, `legacy` or `2026-07-28`), with `env` set for it and the commands
/// it runs; returns what each action saw.
pub fn http_client(
    url: &str,
    key: &str,
    mode: &str,
    actions: serde_json::Value,
    env: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let mut env = env.to_vec();
    env.extend([("HARNESS_MCP_KEY", key), ("HARNESS_MCP_MODE", mode)]);
    python_client(actions, &[url], &env)
}

/// Runs the MCP Python SDK's client (`tests/mcp/client.py`) with `actions` against `server` (a
/// URL, or the command of a stdio server) with `env` set; returns what each action saw.
pub fn python_client(
    actions: serde_json::Value,
    server: &[&str],
    env: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let root = harness_e2e::repo_root();
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/mcp/client.py"))
        .arg(actions.to_string())
        .args(server)
        .envs(env.iter().copied())
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

/// A `harness serve` process on a free loopback port, stopped when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Served {
    pub fn start(policy: &Path) -> Served {
        Served::start_with(policy, &[])
    }

    /// [`Served::start`] with more arguments to `harness serve`.
    pub fn start_with(policy: &Path, arguments: &[&str]) -> Served {
        Served::start_in(policy, arguments, &[])
    }

    /// [`Served::start_with`] with environment variables set for the server. It listens on a
    /// port the kernel picks and says which on its first line of output, so no other test's
    /// server can take the port between choosing and binding it.
    pub fn start_in(policy: &Path, arguments: &[&str], env: &[(&str, &str)]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["serve", "--policy"])
            .arg(policy)
            .args(["--listen", "127.0.0.1:0"])
            .args(arguments)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("harness serve said {line:?}, not where it listens"));
        let served = Served { child, addr };
        for _ in 0..200 {
            if served.get("/readyz").starts_with("HTTP/1.1 200") {
                return served;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("harness serve did not become ready on {addr}");
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The raw response to `GET path`.
    pub fn get(&self, path: &str) -> String {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ))
    }

    /// The raw response to a JSON-RPC ping POSTed with `headers`.
    pub fn ping(&self, headers: &str) -> String {
        self.post(headers, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
    }

    /// The raw response to JSON-RPC `body` POSTed with `headers`.
    pub fn post(&self, headers: &str, body: &str) -> String {
        self.raw(&format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n{headers}\
             Connection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        ))
    }

    /// `METHOD path` with `headers` (each ending in CRLF) and `body` as JSON: the status and
    /// the body.
    pub fn http(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        let response = self.raw(&format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        ));
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        (status, body)
    }

    pub fn raw(&self, request: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(self.addr) else {
            return String::new();
        };
        let _ = stream.write_all(request.as_bytes());
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks `answer` against the schema `name` of the OpenAPI `document` (its `$ref`s resolved
/// within the document).
pub fn conforms(document: &serde_json::Value, name: &str, answer: &serde_json::Value) {
    let mut root = document.clone();
    root["$ref"] = serde_json::json!(format!("#/components/schemas/{name}"));
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{answer} is not a {name}: {errors:?}");
}
