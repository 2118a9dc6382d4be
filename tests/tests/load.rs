//! Loading is all or nothing: a changed file, a file that is not a component, a core module and a
//! component with imports the host does not provide are refused with a message naming them. The
//! compile cache is reused, and a damaged entry is rebuilt rather than trusted.

use std::path::{Path, PathBuf};

use harness_e2e::{PolicyFile, hostile, importer, types_only};
use harness_sandbox::{CacheOutcome, Capability, Host, LoadError, NotAComponent, Policy};

fn load(policy: &Path) -> Result<Host, LoadError> {
    Host::load(Policy::load(policy).expect("the whitelist parses"))
}

fn load_err(policy: &Path) -> LoadError {
    match load(policy) {
        Ok(_) => panic!(
            "{} loaded, but it should have been refused",
            policy.display()
        ),
        Err(e) => e,
    }
}

/// Copies the hostile fixture into `dir` under `name`, so a test can change it.
fn copy_of_hostile(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(hostile(), &path).unwrap();
    path
}

#[test]
fn a_changed_component_is_refused_by_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let component = copy_of_hostile(tmp.path(), "tool.wasm");
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("pinned", &component, "")
        .write(tmp.path());
    // A custom section changes the bytes but keeps the component valid: only the pin catches it.
    let mut bytes = std::fs::read(&component).unwrap();
    bytes.extend_from_slice(&[0, 4, 3, b'x', b'y', b'z']);
    std::fs::write(&component, bytes).unwrap();

    let err = load_err(&policy);
    assert!(
        matches!(err, LoadError::DigestMismatch { ref tool, .. } if tool == "pinned"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("tools.pinned.sha256"), "{message}");
    assert!(message.contains(&policy.display().to_string()), "{message}");
    assert!(message.contains("tool.wasm"), "{message}");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let component = tmp.path().join("notes.wasm");
    std::fs::write(&component, "this is not wasm\n").unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("notes", &component, "")
        .write(tmp.path());

    let err = load_err(&policy);
    assert!(
        matches!(
            err,
            LoadError::NotAComponent {
                problem: NotAComponent::NotWasm,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("notes.wasm is not a WebAssembly file"),
        "{message}"
    );
    assert!(message.contains("tools.notes.component"), "{message}");
}

#[test]
fn a_core_module_is_refused_with_the_way_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let component = tmp.path().join("core.wasm");
    std::fs::write(
        &component,
        wat::parse_str("(module (func (export \"f\")))").unwrap(),
    )
    .unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("core", &component, "")
        .write(tmp.path());

    let err = load_err(&policy);
    assert!(
        matches!(
            err,
            LoadError::NotAComponent {
                problem: NotAComponent::CoreModule,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("is a core wasm module, not a component"),
        "{err}"
    );
}

#[test]
fn imports_outside_the_linked_set_are_refused_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("fine", &hostile(), "")
        .tool("greedy", &importer(), "")
        .write(tmp.path());

    let err = load_err(&policy);
    match &err {
        LoadError::UnsupportedImports { tool, imports, .. } => {
            assert_eq!(tool, "greedy");
            assert_eq!(imports, &["test:importer/vault (unknown)".to_owned()]);
        }
        other => panic!("expected UnsupportedImports, got {other:?}"),
    }
    assert!(err.to_string().contains("test:importer/vault"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_carries_only_types_needs_nothing_from_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .tool("counter", &types_only(), "strict = true")
        .write(tmp.path());
    let host = load(&policy).unwrap();
    let tool = host.tools().next().unwrap();
    assert_eq!(tool.imports, ["test:typesonly/types"]);
    let report = host
        .call(
            "counter.count",
            r#"{"it": {"name": "bolts", "count": 12}}"#,
            &harness_sandbox::CallContext::new("tester", "run-types"),
        )
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        harness_sandbox::Outcome::Ok {
            value: serde_json::json!(12)
        }
    );

    let inspection =
        harness_sandbox::inspect::inspect(&std::fs::read(types_only()).unwrap()).unwrap();
    assert!(inspection.refused_imports.is_empty());
    assert_eq!(
        inspection.imports[&Capability::TypesOnly],
        ["test:typesonly/types"]
    );
}

#[test]
fn the_cache_is_reused_and_a_damaged_entry_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let policy = PolicyFile::new(&cache)
        .tool("hostile", &hostile(), "")
        .write(tmp.path());
    let outcome = |host: &Host| host.tools().next().expect("one tool").cache;

    assert_eq!(outcome(&load(&policy).unwrap()), CacheOutcome::Compiled);
    assert_eq!(outcome(&load(&policy).unwrap()), CacheOutcome::Hit);

    let entries: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one entry per component: {entries:?}");
    let entry = &entries[0];
    assert!(entry.extension().is_some_and(|e| e == "cwasm"), "{entry:?}");

    // Flip one byte of the compiled code: the checksum catches it.
    let mut bytes = std::fs::read(entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(entry, &bytes).unwrap();
    let host = load(&policy).unwrap();
    assert_eq!(outcome(&host), CacheOutcome::Rebuilt);
    assert_ne!(
        std::fs::read(entry).unwrap(),
        bytes,
        "the entry was replaced"
    );
    drop(host);
    assert_eq!(outcome(&load(&policy).unwrap()), CacheOutcome::Hit);

    // A truncated entry and one that is not ours at all are rebuilt too.
    std::fs::write(entry, &bytes[..100]).unwrap();
    assert_eq!(outcome(&load(&policy).unwrap()), CacheOutcome::Rebuilt);
    std::fs::write(entry, b"\0asm\x0d\0\x01\0 someone else's bytes").unwrap();
    assert_eq!(outcome(&load(&policy).unwrap()), CacheOutcome::Rebuilt);
}

#[cfg(unix)]
#[test]
fn a_cache_directory_others_can_write_is_locked_down() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let policy = PolicyFile::new(&cache)
        .tool("hostile", &hostile(), "")
        .write(tmp.path());

    load(&policy).unwrap();
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
