//! Turns tool sources into WebAssembly components that Harness can load.
//!
//! Every input ends in the same place — a component whose embedded WIT world is the tool's,
//! carrying the world's doc comments (which the host offers to models as descriptions):
//! - Rust crates using `harness-guest` ([`rust::RustBuild`]), with rustup's `wasm32-wasip2`
//!   target or Debian's `rustc-web` toolchain;
//! - Python apps ([`python::build_python`]) through `componentize-py`;
//! - C sources ([`c::build_c`]): bindings from `wit-bindgen-c`, compiled with clang and wasi-libc;
//! - WAT text ([`component_from_wat`]), for small and adversarial tools;
//! - a core wasm module built for `wasm32-wasip1` ([`component_from_core`]), wrapped with the
//!   WASI reactor adapter of the matching wasmtime.
//!
//! WIT worlds may import `harness:tool` interfaces: pass the folder of that package (the
//! repository's `wit/`, see [`harness_wit`]) in [`Wit::deps`].

pub mod c;
pub mod project;
pub mod python;
pub mod rust;
pub mod scaffold;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

/// Where a tool's WIT world lives.
#[derive(Clone, Debug)]
pub struct Wit {
    /// WIT package folders the world depends on (e.g. the repository's `wit/`), pushed first.
    pub deps: Vec<PathBuf>,
    /// The file or folder holding the tool's own package.
    pub path: PathBuf,
    /// The world to build.
    pub world: String,
}

impl Wit {
    /// The tool at `path` with the `harness:tool` package as its dependency, building `world`
    /// or, when `None`, the only world its package defines.
    pub fn tool(path: impl Into<PathBuf>, world: Option<&str>) -> Result<Wit> {
        let mut wit = Wit {
            deps: vec![harness_wit()],
            path: path.into(),
            world: world.unwrap_or_default().to_owned(),
        };
        if world.is_none() {
            let (resolve, id) = wit.resolve()?;
            wit.world = resolve.worlds[id].name.clone();
        }
        Ok(wit)
    }

    /// The world's full name (`package:name/world@version`), as tools outside this crate need
    /// it when several packages are in play.
    pub fn qualified_world(&self) -> Result<String> {
        let (resolve, world) = self.resolve()?;
        let package = resolve.worlds[world]
            .package
            .context("the world has no package")?;
        Ok(resolve.id_of_name(package, &resolve.worlds[world].name))
    }

    fn resolve(&self) -> Result<(wit_parser::Resolve, wit_parser::WorldId)> {
        let mut resolve = wit_parser::Resolve::default();
        for dep in &self.deps {
            resolve
                .push_path(dep)
                .with_context(|| format!("reading WIT dependency {}", dep.display()))?;
        }
        let (pkg, _) = resolve
            .push_path(&self.path)
            .with_context(|| format!("reading WIT {}", self.path.display()))?;
        let wanted = (!self.world.is_empty()).then_some(self.world.as_str());
        let world = resolve.select_world(&[pkg], wanted).with_context(|| {
            format!(
                "selecting world `{}` of {}",
                self.world,
                self.path.display()
            )
        })?;
        Ok((resolve, world))
    }
}

/// Builds a component from WAT text whose exports use the canonical ABI names of `wit`'s world.
pub fn component_from_wat(wat: &str, wit: &Wit) -> Result<Vec<u8>> {
    let module = wat::parse_str(wat).context("parsing WAT")?;
    encode(module, wit, false)
}

/// Wraps a core wasm module (built for `wasm32-wasip1` as a reactor) into a component.
pub fn component_from_core(module: Vec<u8>, wit: &Wit) -> Result<Vec<u8>> {
    encode(module, wit, true)
}

fn encode(mut module: Vec<u8>, wit: &Wit, wasi_adapter: bool) -> Result<Vec<u8>> {
    let (resolve, world) = wit.resolve()?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .context("embedding the WIT world")?;
    let mut encoder = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .context("reading the core module")?;
    if wasi_adapter {
        encoder = encoder
            .adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
            .context("adding the WASI reactor adapter")?;
    }
    let mut component = encoder.encode().context("encoding the component")?;
    append_world_docs(&mut component, &resolve, world)?;
    Ok(component)
}

/// The `harness:tool` WIT package that tool worlds import from (the repository's `wit/`).
pub fn harness_wit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit")
}

/// Adds the world's doc comments to a component built by other tools (cargo's `wasm32-wasip2`
/// linker, componentize-py), which leave them out.
pub fn with_world_docs(mut component: Vec<u8>, wit: &Wit) -> Result<Vec<u8>> {
    let (resolve, world) = wit.resolve()?;
    append_world_docs(&mut component, &resolve, world)?;
    Ok(component)
}

/// Runs `command`, failing with its stderr when it fails or a hint when it cannot start.
/// A fresh folder under `work_dir` for one build of `world`'s intermediate files, removed when
/// dropped.
fn scratch_dir(work_dir: &Path, world: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    tempfile::Builder::new()
        .prefix(&format!("{world}-"))
        .tempdir_in(work_dir)
        .with_context(|| format!("creating a build folder in {}", work_dir.display()))
}

fn run(command: &mut Command, missing_hint: &str) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .with_context(|| format!("running {program} ({missing_hint})"))?;
    if !output.status.success() {
        bail!(
            "{program} failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}

/// Adds the world's doc comments (functions, types, fields, cases) as a `package-docs` section,
/// so hosts that decode the component see them. A decoded component's world is named `root`.
fn append_world_docs(
    component: &mut Vec<u8>,
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Result<()> {
    let mut docs_only = resolve.clone();
    let package = docs_only.worlds[world]
        .package
        .context("the world has no package")?;
    docs_only.worlds[world].name = "root".into();
    let pkg = &mut docs_only.packages[package];
    pkg.interfaces.clear();
    pkg.worlds.clear();
    pkg.worlds.insert("root".into(), world);
    pkg.docs.contents = None;
    let data = wit_parser::PackageMetadata::extract(&docs_only, package)
        .encode()
        .context("encoding the world's docs")?;
    let name = wit_parser::PackageMetadata::SECTION_NAME;
    let mut payload = leb128(name.len() as u64);
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(&data);
    component.push(0);
    component.extend(leb128(payload.len() as u64));
    component.extend(payload);
    Ok(())
}

fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
