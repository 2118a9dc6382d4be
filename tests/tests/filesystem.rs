//! Filesystem grants against a real C tool doing the attacks: only granted directories exist,
//! nothing escapes them, and a read-only grant refuses every change. Each check also looks at the
//! host side, so a leak that the guest does not notice still fails the test.

use std::path::Path;

use harness_e2e::{PolicyFile, c_fixture, example_tool, hostile};
use harness_sandbox::{CallContext, CallReport, Host, LoadError, Outcome, Policy};
use serde_json::{Value, json};

struct Sandbox {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    host: Host,
}

/// `outside/secret.txt` next to the granted `kb` (ro), `work` and `other` (rw); `kb` holds two
/// symlinks planted by the host that point outside it.
fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    for dir in ["outside", "kb/sub", "work", "other"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("outside/secret.txt"), "top secret").unwrap();
    std::fs::write(root.join("kb/readme.txt"), "hello kb").unwrap();
    std::fs::write(root.join("kb/sub/deep.txt"), "deep").unwrap();
    std::os::unix::fs::symlink("../outside", root.join("kb/escape")).unwrap();
    std::os::unix::fs::symlink(root.join("outside"), root.join("kb/abs-escape")).unwrap();

    let probe = c_fixture("fsprobe");
    let policy = PolicyFile::new(&root.join("cache"))
        .tool(
            "probe",
            &probe,
            r#"fs = [
  { host = "kb", guest = "/kb", mode = "ro" },
  { host = "work", guest = "/work", mode = "rw" },
  { host = "other", guest = "/other", mode = "rw" },
]
env = { LANG = "C", GREETING = "hi" }"#,
        )
        .tool("pure", &probe, "")
        .write(&root);
    let host = Host::load(Policy::load(policy).unwrap()).unwrap();
    Sandbox {
        _tmp: tmp,
        root,
        host,
    }
}

impl Sandbox {
    async fn call(&self, function: &str, args: Value) -> Outcome {
        self.report(function, args).await.outcome
    }

    async fn report(&self, function: &str, args: Value) -> CallReport {
        self.host
            .call(
                function,
                &args.to_string(),
                &CallContext::new("tester", "run-fs"),
            )
            .await
            .unwrap()
    }

    /// Asserts that `function` fails inside the guest (a tool error, not a crash).
    async fn refused(&self, function: &str, args: Value) {
        match self.call(function, args.clone()).await {
            Outcome::ToolError { error } => assert!(error.is_string(), "{error}"),
            other => panic!("{function}({args}) should be refused, got {other:?}"),
        }
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path)).unwrap()
    }

    fn exists(&self, path: &str) -> bool {
        self.root.join(path).symlink_metadata().is_ok()
    }
}

fn ok(value: Value) -> Outcome {
    Outcome::Ok { value }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_directories_read_and_write() {
    let s = sandbox();
    assert_eq!(
        s.call("probe.read-file", json!({"path": "/kb/readme.txt"}))
            .await,
        ok(json!("hello kb"))
    );
    assert_eq!(
        s.call("probe.read-file", json!({"path": "/kb/sub/deep.txt"}))
            .await,
        ok(json!("deep"))
    );
    assert_eq!(
        s.call("probe.list-dir", json!({"path": "/kb"})).await,
        ok(json!(["abs-escape", "escape", "readme.txt", "sub"]))
    );
    assert_eq!(
        s.call(
            "probe.write-file",
            json!({"path": "/work/a.txt", "data": "written"})
        )
        .await,
        ok(json!(null))
    );
    assert_eq!(s.read("work/a.txt"), "written");
    assert_eq!(
        s.call("probe.read-file", json!({"path": "/work/a.txt"}))
            .await,
        ok(json!("written"))
    );
    assert_eq!(
        s.call(
            "probe.rename",
            json!({"source": "/work/a.txt", "destination": "/work/b.txt"})
        )
        .await,
        ok(json!(null))
    );
    assert_eq!(s.read("work/b.txt"), "written");
    assert_eq!(
        s.call("probe.truncate", json!({"path": "/work/b.txt"}))
            .await,
        ok(json!(null))
    );
    assert_eq!(s.read("work/b.txt"), "");
    assert_eq!(
        s.call("probe.remove", json!({"path": "/work/b.txt"})).await,
        ok(json!(null))
    );
    assert!(!s.exists("work/b.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_cannot_leave_the_granted_directories() {
    let s = sandbox();
    for path in [
        "/kb/../outside/secret.txt",
        "/kb/sub/../../outside/secret.txt",
        "/work/../outside/secret.txt",
        "/outside/secret.txt",
        "/etc/passwd",
        "/kb/escape/secret.txt",
        "/kb/abs-escape/secret.txt",
        "/kb/readme.txt/",
        "/kb/readme.txt/.",
        "../outside/secret.txt",
        "outside/secret.txt",
    ] {
        s.refused("probe.read-file", json!({ "path": path })).await;
    }
    for path in ["/kb/escape", "/kb/abs-escape/", "/", "/kb/..", "/etc"] {
        s.refused("probe.list-dir", json!({ "path": path })).await;
    }
    s.refused(
        "probe.write-file",
        json!({"path": "/work/../outside/new.txt", "data": "x"}),
    )
    .await;
    s.refused(
        "probe.write-file",
        json!({"path": "/tmp/harness-escape.txt", "data": "x"}),
    )
    .await;
    assert!(!s.exists("outside/new.txt"));
    assert_eq!(s.read("outside/secret.txt"), "top secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_made_by_the_guest_do_not_lead_out() {
    let s = sandbox();
    let secret = s.root.join("outside/secret.txt");
    let mut made_any = false;
    for (target, link) in [
        (secret.to_str().unwrap(), "/work/abs"),
        ("/etc/passwd", "/work/etc"),
        ("../outside/secret.txt", "/work/rel"),
        ("../../../../../../etc/passwd", "/work/deep"),
    ] {
        // Creating the link may be refused; if it was made, following it must be.
        let made = s
            .call("probe.symlink", json!({"target": target, "link": link}))
            .await;
        let on_host = s.root.join(&link[1..]);
        if made == ok(json!(null)) {
            assert!(on_host.symlink_metadata().unwrap().file_type().is_symlink());
            s.refused("probe.read-file", json!({ "path": link })).await;
            s.refused("probe.write-file", json!({"path": link, "data": "pwned"}))
                .await;
            made_any = true;
        } else {
            assert!(!on_host.exists(), "{link}");
        }
    }
    assert!(
        made_any,
        "relative links inside the grant can be made, only not followed out"
    );
    assert_eq!(s.read("outside/secret.txt"), "top secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_renames_cannot_cross_out_of_a_grant() {
    let s = sandbox();
    std::fs::write(s.root.join("work/mine.txt"), "mine").unwrap();
    for (function, from, to) in [
        // A hard link in a writable directory to a read-only file would make it writable.
        ("probe.hard-link", "/kb/readme.txt", "/work/readme-link"),
        ("probe.hard-link", "/work/mine.txt", "/kb/mine-link"),
        (
            "probe.hard-link",
            "/work/mine.txt",
            "/work/../outside/mine-link",
        ),
        ("probe.rename", "/kb/readme.txt", "/work/stolen.txt"),
        ("probe.rename", "/work/mine.txt", "/kb/mine.txt"),
        (
            "probe.rename",
            "/work/mine.txt",
            "/work/../outside/mine.txt",
        ),
        ("probe.rename", "/kb/sub", "/work/sub"),
    ] {
        let key = if function == "probe.rename" {
            ("source", "destination")
        } else {
            ("existing", "link")
        };
        s.refused(function, json!({ key.0: from, key.1: to })).await;
    }
    assert!(!s.exists("work/readme-link"));
    assert!(!s.exists("work/stolen.txt"));
    assert!(!s.exists("kb/mine.txt"));
    assert!(!s.exists("outside/mine.txt"));
    assert!(!s.exists("outside/mine-link"));
    assert_eq!(s.read("kb/readme.txt"), "hello kb");
    assert_eq!(s.read("work/mine.txt"), "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_grant_refuses_every_change() {
    let s = sandbox();
    let modified = |s: &Sandbox| {
        s.root
            .join("kb/readme.txt")
            .metadata()
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = modified(&s);
    s.refused(
        "probe.write-file",
        json!({"path": "/kb/readme.txt", "data": "changed"}),
    )
    .await;
    s.refused(
        "probe.write-file",
        json!({"path": "/kb/new.txt", "data": "new"}),
    )
    .await;
    s.refused("probe.truncate", json!({"path": "/kb/readme.txt"}))
        .await;
    s.refused("probe.set-times", json!({"path": "/kb/readme.txt"}))
        .await;
    s.refused("probe.remove", json!({"path": "/kb/readme.txt"}))
        .await;
    s.refused(
        "probe.rename",
        json!({"source": "/kb/readme.txt", "destination": "/kb/moved.txt"}),
    )
    .await;
    s.refused(
        "probe.symlink",
        json!({"target": "readme.txt", "link": "/kb/link"}),
    )
    .await;
    assert_eq!(s.read("kb/readme.txt"), "hello kb");
    assert_eq!(modified(&s), before);
    assert!(!s.exists("kb/new.txt"));
    assert!(!s.exists("kb/moved.txt"));
    assert!(!s.exists("kb/link"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungranted_tool_sees_no_files_and_no_environment() {
    let s = sandbox();
    s.refused("pure.read-file", json!({"path": "/kb/readme.txt"}))
        .await;
    s.refused("pure.list-dir", json!({"path": "/"})).await;
    assert_eq!(s.call("pure.environment", json!({})).await, ok(json!([])));
    assert_eq!(
        s.call("probe.environment", json!({})).await,
        ok(json!(["GREETING=hi", "LANG=C"]))
    );
}

#[test]
fn grants_must_match_imports() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("kb")).unwrap();
    let load = |tool: &str, component: &Path, extra: &str| {
        let policy = PolicyFile::new(&tmp.path().join("cache"))
            .tool(tool, component, extra)
            .write(tmp.path());
        Host::load(Policy::load(policy).unwrap()).map(drop)
    };

    // Granting files to a tool that cannot use them is a mistake in the whitelist.
    let err = load(
        "adder",
        &hostile(),
        r#"fs = [{ host = "kb", guest = "/kb", mode = "ro" }]"#,
    )
    .unwrap_err();
    assert!(
        matches!(err, LoadError::OverGranted { key: "fs", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("tools.adder.fs"), "{err}");

    // A strict tool that imports the filesystem without a grant is refused...
    let err = load("calc", &example_tool("calc"), "strict = true").unwrap_err();
    match &err {
        LoadError::StrictUngranted { imports, .. } => {
            assert!(
                imports.iter().any(|i| i.starts_with("wasi:filesystem/")),
                "{imports:?}"
            );
        }
        other => panic!("expected StrictUngranted, got {other:?}"),
    }
    // ...and loads once granted; without strict it loads and is denied at run time.
    load(
        "calc",
        &example_tool("calc"),
        "strict = true\nfs = [{ host = \"kb\", guest = \"/kb\", mode = \"ro\" }]",
    )
    .unwrap();
    load("calc", &example_tool("calc"), "").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_file_operations_are_recorded_as_denials() {
    let s = sandbox();
    for (function, args, target) in [
        (
            "probe.read-file",
            json!({"path": "/kb/../outside/secret.txt"}),
            "open \"../outside/secret.txt\"",
        ),
        (
            "probe.read-file",
            json!({"path": "/kb/escape/secret.txt"}),
            "open \"escape/secret.txt\"",
        ),
        (
            "probe.write-file",
            json!({"path": "/kb/new.txt", "data": "x"}),
            "open \"new.txt\"",
        ),
        (
            "probe.rename",
            json!({"source": "/work/a", "destination": "/kb/a"}),
            "rename",
        ),
    ] {
        let report = s.report(function, args.clone()).await;
        assert!(
            matches!(report.outcome, Outcome::ToolError { .. }),
            "{function}({args})"
        );
        let denial = report
            .denials
            .iter()
            .find(|d| d.capability == harness_sandbox::Capability::Filesystem)
            .unwrap_or_else(|| panic!("{function}({args}) left no denial: {:?}", report.denials));
        assert!(
            denial.target.starts_with(target),
            "{function}({args}): {denial:?}"
        );
    }
    // An allowed read records nothing.
    let report = s
        .report("probe.read-file", json!({"path": "/kb/readme.txt"}))
        .await;
    assert!(report.denials.is_empty(), "{:?}", report.denials);
}
