//! Test support: builds the guest fixtures from source and writes whitelists that pin them.
//!
//! A fixture is built once for its sources: its file is named by a hash of everything it is
//! built from, built under a file lock and written by an atomic rename, so test processes
//! running in parallel (nextest runs each test in its own) share one build, never read a
//! half-written file and never see a pinned file replaced.

pub mod http_server;
pub mod postgres;
pub mod registry;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Result;
use harness_build::Wit;
use harness_build::project::Project;
use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_owned()
}

/// Starts a test service with `scripts/SCRIPT DIR` (Debian package `package` provides it) and
/// returns what the script prints: where the service listens.
pub(crate) fn start_service(script: &str, package: &str, dir: &Path) -> String {
    let started = std::process::Command::new(repo_root().join("scripts").join(script))
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    assert!(
        started.status.success(),
        "scripts/{script} failed (is Debian's {package} installed? scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&started.stderr)
    );
    String::from_utf8(started.stdout)
        .unwrap_or_else(|e| panic!("scripts/{script} printed non-UTF-8: {e}"))
        .trim()
        .to_owned()
}

/// Where built fixtures go: `target/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    let dir = repo_root().join("target").join("fixtures");
    std::fs::create_dir_all(&dir).expect("creating target/fixtures");
    dir
}

/// The adversarial WAT component (`tests/fixtures/wat/hostile.wat`).
pub fn hostile() -> PathBuf {
    wat_fixture("hostile")
}

/// A WAT component that imports an interface the host does not provide
/// (`tests/fixtures/wat/importer.wat`).
pub fn importer() -> PathBuf {
    wat_fixture("importer")
}

/// A WAT component whose world uses a record from its own types-only interface
/// (`tests/fixtures/wat/typesonly.wat`).
pub fn types_only() -> PathBuf {
    wat_fixture("typesonly")
}

/// A large generated component (thousands of functions, a few MiB) for compile-time benchmarks.
/// Its world exports `entry: func(x: s32) -> s32`, which calls every generated function.
pub fn large() -> PathBuf {
    const FUNCTIONS: usize = 6_000;
    built_once(
        "large",
        Inputs::Text(format!("large, {FUNCTIONS} functions")),
        || {
            let mut wat = String::from("(module\n  (memory (export \"memory\") 1)\n");
            for f in 0..FUNCTIONS {
                let _ = writeln!(wat, "  (func $f{f} (param i32) (result i32) (local i32)");
                for step in 0..24 {
                    let _ = write!(
                        wat,
                        "    (local.set 1 (i32.add (i32.mul (local.get 0) (i32.const {})) (i32.load (i32.const {}))))\n    (local.set 0 (i32.xor (local.get 1) (i32.shr_u (local.get 1) (i32.const {}))))\n",
                        f * 31 + step * 7 + 1,
                        (step * 4) % 1024,
                        step % 31 + 1
                    );
                }
                wat.push_str("    (local.get 0))\n");
            }
            wat.push_str(
                "  (func (export \"entry\") (param i32) (result i32)\n    (local.get 0)\n",
            );
            for f in 0..FUNCTIONS {
                let _ = writeln!(wat, "    (call $f{f})");
            }
            wat.push_str("  )\n)\n");
            let dir = fixtures_dir().join("large");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(
                dir.join("large.wit"),
                "package test:large;\n\n/// A large generated component.\nworld large {\n  /// Runs every generated function on `x`.\n  export entry: func(x: s32) -> s32;\n}\n",
            )?;
            harness_build::component_from_wat(
                &wat,
                &Wit {
                    deps: vec![],
                    path: dir.join("large.wit"),
                    world: "large".into(),
                },
            )
        },
    )
}

/// `tests/fixtures/wat/NAME.wat` built against world `NAME` of `NAME.wit`.
fn wat_fixture(name: &'static str) -> PathBuf {
    let dir = repo_root().join("tests/fixtures/wat");
    let inputs = Inputs::Files(vec![
        dir.join(format!("{name}.wat")),
        dir.join(format!("{name}.wit")),
    ]);
    built_once(name, inputs, || {
        let wat = std::fs::read_to_string(dir.join(format!("{name}.wat")))?;
        harness_build::component_from_wat(
            &wat,
            &Wit {
                deps: vec![],
                path: dir.join(format!("{name}.wit")),
                world: name.into(),
            },
        )
    })
}

/// An example tool from `tools/NAME`, in whichever language it is written, built from source
/// the way `harness build` builds it.
pub fn example_tool(name: &'static str) -> PathBuf {
    build_project(name, repo_root().join("tools").join(name))
}

/// A C test fixture from `tests/fixtures/c/NAME` (laid out as a tool).
pub fn c_fixture(name: &'static str) -> PathBuf {
    build_project(name, repo_root().join("tests/fixtures/c").join(name))
}

/// Builds the tool folder `dir` (Rust tools share `target/guest`). Its inputs are the folder, the
/// guest SDK and the WIT contract.
fn build_project(name: &'static str, dir: PathBuf) -> PathBuf {
    let root = repo_root();
    let inputs = Inputs::Files(vec![dir.clone(), root.join("guest-sdk"), root.join("wit")]);
    built_once(name, inputs, || {
        let built = Project::open(&dir)?.build(Some(&root.join("target/guest")))?;
        Ok(built.component)
    })
}

/// What a fixture is built from, for naming the built file.
enum Inputs {
    /// These files, and every file under these folders (build outputs and caches skipped).
    Files(Vec<PathBuf>),
    /// A generated fixture, described.
    Text(String),
}

impl Inputs {
    /// The first 16 hex digits of a SHA-256 over the inputs' names and contents.
    fn digest(&self) -> String {
        let mut digest = Sha256::new();
        match self {
            Inputs::Text(text) => digest.update(text.as_bytes()),
            Inputs::Files(paths) => {
                let mut files = Vec::new();
                for path in paths {
                    collect_files(path, &mut files);
                }
                files.sort();
                for file in files {
                    digest.update(file.to_string_lossy().as_bytes());
                    digest.update(std::fs::read(&file).unwrap_or_default());
                }
            }
        }
        hex::encode(digest.finalize())[..16].to_owned()
    }
}

/// Every file at or under `path`, skipping build outputs, caches and hidden entries.
fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || matches!(name, "target" | "__pycache__") {
        return;
    }
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                collect_files(&entry.path(), files);
            }
        }
        Err(_) if path.is_file() => files.push(path.to_owned()),
        Err(_) => {}
    }
}

/// `target/fixtures/NAME-DIGEST.wasm`, built by `build` unless a file for these inputs exists.
fn built_once(
    name: &'static str,
    inputs: Inputs,
    build: impl FnOnce() -> Result<Vec<u8>>,
) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<&'static str, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let dir = fixtures_dir();
    let stem = format!("{name}-{}", inputs.digest());
    let path = dir.join(format!("{stem}.wasm"));
    // Some toolchains (componentize-py) do not build byte-identical output twice, so a second
    // build must never replace a file another test has already pinned: builders take turns.
    let lock = std::fs::File::create(dir.join(format!("{stem}.lock"))).expect("creating a lock");
    lock.lock().expect("locking a fixture");
    if !path.is_file() {
        let bytes = build().unwrap_or_else(|e| panic!("building {name}: {e:#}"));
        let mut file = tempfile::NamedTempFile::new_in(&dir).expect("creating a fixture file");
        std::io::Write::write_all(&mut file, &bytes).expect("writing a fixture");
        file.persist_noclobber(&path)
            .expect("renaming a fixture into place");
    }
    drop(lock);
    built.insert(name, path.clone());
    path
}

/// The lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("reading component"),
    ))
}

/// A whitelist under construction: `[host]` pointing at a private cache, and one entry per tool.
pub struct PolicyFile {
    text: String,
}

impl PolicyFile {
    /// Starts a whitelist whose compile cache is `cache_dir`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            text: format!(
                "[host]\ncache_dir = {:?}\n",
                cache_dir.display().to_string()
            ),
        }
    }

    /// Adds raw TOML (for `[host]` keys or `[defaults]`).
    pub fn raw(mut self, toml: &str) -> Self {
        self.text.push_str(toml);
        self.text.push('\n');
        self
    }

    /// Sets `[host] data_dir` (before any tool is added).
    pub fn data_dir(self, dir: &Path) -> Self {
        self.raw(&format!("data_dir = {:?}", dir.display().to_string()))
    }

    /// Adds agent `name` over a scripted model replaying `script` (JSON Lines, written to
    /// `dir/NAME.jsonl`), with extra agent `key = value` lines.
    pub fn scripted_agent(self, dir: &Path, name: &str, script: &str, keys: &str) -> Self {
        let path = dir.join(format!("{name}.jsonl"));
        std::fs::write(&path, script).expect("writing the script");
        self.raw(&format!(
            "[models.{name}-script]\nprovider = \"scripted\"\nscript = {:?}\n\n[agents.{name}]\nmodel = \"{name}-script\"\n{keys}",
            path.display().to_string()
        ))
    }

    /// Adds tool `name` pinned to `component`, with extra `key = value` lines.
    pub fn tool(mut self, name: &str, component: &Path, extra: &str) -> Self {
        let _ = write!(
            self.text,
            "\n[tools.{name}]\ncomponent = {:?}\nsha256 = \"{}\"\n{extra}\n",
            component.display().to_string(),
            sha256_file(component)
        );
        self
    }

    /// Writes the whitelist to `dir/harness.toml` and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("harness.toml");
        std::fs::write(&path, &self.text).expect("writing whitelist");
        path
    }
}
