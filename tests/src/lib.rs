//! Test support: builds the guest fixtures from source (once per test process) and writes
//! whitelists that pin them.

pub mod http_server;

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

/// Where built fixtures go: `target/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    let dir = repo_root().join("target").join("fixtures");
    std::fs::create_dir_all(&dir).expect("creating target/fixtures");
    dir
}

fn build_once(
    cell: &'static OnceLock<PathBuf>,
    name: &str,
    build: impl FnOnce() -> Result<Vec<u8>>,
) -> PathBuf {
    cell.get_or_init(|| {
        let bytes = build().unwrap_or_else(|e| panic!("building fixture {name}: {e:#}"));
        let path = fixtures_dir().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).expect("writing fixture");
        path
    })
    .clone()
}

/// The adversarial WAT component (`tests/fixtures/wat/hostile.wat`).
pub fn hostile() -> PathBuf {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, "hostile", || wat_component("hostile"))
}

/// A WAT component that imports an interface the host does not provide
/// (`tests/fixtures/wat/importer.wat`).
pub fn importer() -> PathBuf {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, "importer", || wat_component("importer"))
}

/// A large generated component (thousands of functions, a few MiB) for compile-time benchmarks.
/// Its world exports `entry: func(x: s32) -> s32`, which calls every generated function.
pub fn large() -> PathBuf {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, "large", || {
        const FUNCTIONS: usize = 6_000;
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
        wat.push_str("  (func (export \"entry\") (param i32) (result i32)\n    (local.get 0)\n");
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
    })
}

/// Builds `tests/fixtures/wat/NAME.wat` against world `NAME` of `NAME.wit`.
fn wat_component(name: &str) -> Result<Vec<u8>> {
    let dir = repo_root().join("tests/fixtures/wat");
    let wat = std::fs::read_to_string(dir.join(format!("{name}.wat")))?;
    harness_build::component_from_wat(
        &wat,
        &Wit {
            deps: vec![],
            path: dir.join(format!("{name}.wit")),
            world: name.into(),
        },
    )
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

/// Builds the tool folder `dir` once per test process (Rust tools share `target/guest`).
fn build_project(name: &'static str, dir: PathBuf) -> PathBuf {
    built_once(name, || {
        let built = Project::open(&dir)?.build(Some(&repo_root().join("target/guest")))?;
        Ok(built.component)
    })
}

/// `target/fixtures/NAME.wasm`, built by `build` the first time a test process asks for it.
fn built_once(name: &'static str, build: impl FnOnce() -> Result<Vec<u8>>) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<&'static str, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let bytes = build().unwrap_or_else(|e| panic!("building {name}: {e:#}"));
    let path = fixtures_dir().join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).expect("writing component");
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
