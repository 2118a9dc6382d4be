//! Turns tool sources into WebAssembly components that Harness can load.
//!
//! Three inputs are supported, each ending in the same place — a component whose embedded WIT
//! world is the tool's:
//! - WAT text ([`component_from_wat`]), for small and adversarial tools;
//! - a core wasm module built for `wasm32-wasip1` ([`component_from_core`]), wrapped with the
//!   WASI reactor adapter of the matching wasmtime;
//! - C sources ([`build_c`]): bindings from `wit-bindgen-c`, compiled with clang and wasi-libc.
//!
//! WIT worlds may import `harness:tool` interfaces: pass the folder of that package (the
//! repository's `wit/`) in [`Wit::deps`].

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
        let world = resolve
            .select_world(&[pkg], Some(&self.world))
            .with_context(|| format!("selecting world `{}`", self.world))?;
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

/// The clang used for C tools (Debian's `clang-16` with `wasi-libc`), overridable with `HARNESS_CLANG`.
pub fn clang() -> String {
    std::env::var("HARNESS_CLANG").unwrap_or_else(|_| "clang-16".into())
}

/// Builds a C tool: generates bindings for `wit`'s world into `work_dir`, compiles `sources`
/// with them, and wraps the result into a component.
pub fn build_c(sources: &[PathBuf], wit: &Wit, work_dir: &Path) -> Result<Vec<u8>> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    generate_c_bindings(wit, work_dir)?;
    // The generated code pins wit-bindgen's component-type object in the link; this crate embeds
    // the WIT itself (with the wit-component the host uses), so it supplies the symbol instead.
    let force_link = work_dir.join("component_type_link.c");
    let symbol = format!("__component_type_object_force_link_{}", c_name(&wit.world));
    std::fs::write(
        &force_link,
        format!("void {symbol}(void);\nvoid {symbol}(void) {{}}\n"),
    )
    .with_context(|| format!("writing {}", force_link.display()))?;
    let core = work_dir.join(format!("{}.core.wasm", wit.world));
    let mut cmd = Command::new(clang());
    cmd.args([
        "--target=wasm32-wasi",
        "-mexec-model=reactor",
        "-O2",
        "-Wall",
        "-Werror",
        "-Wno-unused-function",
    ])
    .arg("-I")
    .arg(work_dir)
    .arg("-o")
    .arg(&core)
    .args(sources)
    .arg(work_dir.join(format!("{}.c", c_name(&wit.world))))
    .arg(&force_link);
    let output = cmd.output().with_context(|| {
        format!(
            "running {} (install clang-16, lld-16 and wasi-libc)",
            clang()
        )
    })?;
    if !output.status.success() {
        bail!(
            "{} failed:\n{}",
            clang(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    component_from_core(module, wit)
}

/// Writes `<world>.h` and `<world>.c` for `wit`'s world into `dir`.
pub fn generate_c_bindings(wit: &Wit, dir: &Path) -> Result<()> {
    // wit-bindgen-c uses its own wit-parser (0.262, not our 0.254), so the world is resolved again
    // with that version's types rather than through `Wit::resolve`.
    use wit_bindgen_core::wit_parser as bg;
    let mut resolve = bg::Resolve::default();
    for dep in &wit.deps {
        resolve
            .push_path(dep)
            .with_context(|| format!("reading WIT dependency {}", dep.display()))?;
    }
    let (pkg, _) = resolve
        .push_path(&wit.path)
        .with_context(|| format!("reading WIT {}", wit.path.display()))?;
    let world = resolve.select_world(&[pkg], Some(&wit.world))?;
    let mut files = wit_bindgen_core::Files::default();
    let opts = wit_bindgen_c::Opts {
        no_object_file: true,
        ..Default::default()
    };
    opts.build().generate(&mut resolve, world, &mut files)?;
    for (name, contents) in files.iter() {
        std::fs::write(dir.join(name), contents).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

/// The file stem wit-bindgen-c uses for a world (`my-tool` → `my_tool`).
fn c_name(world: &str) -> String {
    world.replace('-', "_")
}
