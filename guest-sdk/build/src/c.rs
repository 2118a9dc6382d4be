//! C tools: bindings from `wit-bindgen-c`, compiled with Debian's clang-16 and wasi-libc.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::{Wit, component_from_core};

/// The clang used for C tools (Debian's `clang-16` with `wasi-libc`), overridable with `HARNESS_CLANG`.
pub fn clang() -> String {
    std::env::var("HARNESS_CLANG").unwrap_or_else(|_| "clang-16".into())
}

/// Builds a C tool: generates bindings for `wit`'s world into a fresh folder under `work_dir`,
/// compiles `sources` with them, and wraps the result into a component. Builds running at the
/// same time never share intermediate files.
pub fn build_c(sources: &[PathBuf], wit: &Wit, work_dir: &Path) -> Result<Vec<u8>> {
    let scratch = crate::scratch_dir(work_dir, &wit.world)?;
    let work_dir = scratch.path();
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
    crate::run(&mut cmd, "install clang-16, lld-16 and wasi-libc")?;
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
