//! The operator console in a real browser: `tests/console/console.mjs` drives headless
//! Chromium (Debian's `chromium`, with `playwright-core` from npm, both installed by
//! `scripts/setup.sh`) against a real `harness serve`: sign-in, the approvals queue, approving
//! and denying paused runs that then finish, run timelines, kill switches, CSRF and role
//! refusals, escaping of hostile tool output, live updates. Its screenshots go to
//! `target/console/`.

mod common;

use std::process::Command;

use common::Served;
use harness_e2e::{PolicyFile, example_tool, repo_root};

const ADMIN: &str = "hk_admin-key-for-console-tests";
const VIEWER: &str = "hk_viewer-key-for-console-tests";

/// A ticket whose title and body try to become markup and script in the console.
const HOSTILE_TICKET: &str = r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "\"><img src=x onerror=\"window.__xss=1\">", "body": "<script>window.__xss=2</script>", "priority": "high"}}]}
{"text": "Ticket 1 is open."}
"#;

#[test]
fn the_console_works_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let sha = |key: &str| harness_sandbox::Sha256Digest::of(key.as_bytes()).to_string();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\napproval = \"required\"",
        )
        .scripted_agent(tmp.path(), "clerk", HOSTILE_TICKET, "")
        .scripted_agent(
            tmp.path(),
            "math",
            r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}]}
{"text": "6 × 7 = 42"}
"#,
            "",
        )
        .raw(&format!(
            "[clients.admin]\nkey_sha256 = \"{}\"\nroles = [\"approver\", \"operator\"]\nact_for = true\n\n\
             [clients.viewer]\nkey_sha256 = \"{}\"\n",
            sha(ADMIN),
            sha(VIEWER)
        ))
        .write(tmp.path());
    let served = Served::start(&policy);
    let root = repo_root();
    let out = root.join("target/console");
    std::fs::create_dir_all(&out).unwrap();
    let node = root.join(".npm-tools/node_modules/.bin/node");
    let output = Command::new(&node)
        .arg(root.join("tests/console/console.mjs"))
        .env("HARNESS_URL", format!("http://{}", served.addr))
        .env("ADMIN_KEY", ADMIN)
        .env("VIEWER_KEY", VIEWER)
        .env("OUT", &out)
        .env(
            "PLAYWRIGHT_CORE",
            root.join(".npm-tools/node_modules/playwright-core"),
        )
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (scripts/setup.sh installs it): {e}",
                node.display()
            )
        });
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser test failed:\n{said}");
    assert!(said.contains("console: every check passed"), "{said}");
    for shot in [
        "console-approvals.png",
        "console-run.png",
        "console-figures.png",
    ] {
        let size = std::fs::metadata(out.join(shot)).map_or(0, |m| m.len());
        assert!(size > 1_000, "{shot} was saved ({size} bytes)");
    }
}

/// On a server without clients the console signs in the local user, who may do everything
/// (as in the API); every answer carries the security headers.
#[test]
fn the_local_user_of_a_server_without_clients_may_do_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool("calc", &example_tool("calc"), "")
        .write(tmp.path());
    let served = Served::start(&policy);
    let login = served.get("/console/login");
    assert!(login.contains("you act as the local user"), "{login}");
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self'",
        "x-frame-options: DENY",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
    ] {
        assert!(
            login
                .to_ascii_lowercase()
                .contains(&header.to_ascii_lowercase()),
            "{header} in {login}"
        );
    }
    let signed_in = served.raw(&format!(
        "POST /console/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 4\r\nConnection: close\r\n\r\nkey=",
        served.addr
    ));
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let cookie = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("a session cookie: {signed_in}"))
        .to_owned();
    let figures = served.raw(&format!(
        "GET /console/figures HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
        served.addr
    ));
    assert!(figures.starts_with("HTTP/1.1 200"), "{figures}");
    assert!(figures.contains("Verify now"), "{figures}");
    let tools = served.raw(&format!(
        "GET /console/tools HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
        served.addr
    ));
    assert!(
        tools.contains("Switch off"),
        "the local user may switch tools: {tools}"
    );
    assert!(
        tools.contains(r#"<dd class="signature">unsigned</dd>"#),
        "{tools}"
    );
    let anonymous = served.get("/console/tools");
    assert!(anonymous.starts_with("HTTP/1.1 303"), "{anonymous}");
}
