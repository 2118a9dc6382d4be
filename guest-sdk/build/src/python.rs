//! Python tools: an app module defining `class WitWorld(wit_world.WitWorld)`, componentized with
//! `componentize-py` together with the SDK's `harness_tool` helper module.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::{Wit, run, with_world_docs};

/// The `harness_tool` helper module's folder (`guest-sdk/python`).
pub fn helper_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../python")
}

/// The `componentize-py` to run: `HARNESS_COMPONENTIZE_PY` if set, else the repository's
/// `.venv` (where the setup script installs it), else the one on `PATH`.
pub fn componentize_py() -> PathBuf {
    if let Some(path) = std::env::var_os("HARNESS_COMPONENTIZE_PY") {
        return path.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/componentize-py");
    venv.canonicalize()
        .unwrap_or_else(|_| "componentize-py".into())
}

/// Builds the Python app `module` (a `MODULE.py` in `app_dir`) against `wit`'s world into a
/// component with the world's docs, using a fresh folder under `work_dir` for the intermediate
/// files. Takes several seconds; the result is about 18 MB (the interpreter is inside).
///
/// componentize-py runs the app once to snapshot it, and Python then writes bytecode next to
/// the sources: so the app and the helper are copied into the build folder and built from there,
/// leaving the tool's and the SDK's folders as they were.
pub fn build_python(app_dir: &Path, module: &str, wit: &Wit, work_dir: &Path) -> Result<Vec<u8>> {
    let scratch = crate::scratch_dir(work_dir, &wit.world)?;
    let app = scratch.path().join("app");
    let helper = scratch.path().join("helper");
    copy_sources(app_dir, &app)?;
    copy_sources(&helper_dir(), &helper)?;
    let output = scratch
        .path()
        .join(format!("{}.componentize-py.wasm", wit.world));
    let mut command = Command::new(componentize_py());
    for dep in &wit.deps {
        command.arg("-d").arg(dep);
    }
    command
        .arg("-d")
        .arg(&wit.path)
        .arg("-w")
        .arg(wit.qualified_world()?)
        .arg("componentize")
        .arg("-p")
        .arg(&app)
        .arg("-p")
        .arg(&helper)
        .arg(module)
        .arg("-o")
        .arg(&output);
    run(
        &mut command,
        "install it with `pip install componentize-py` (scripts/setup.sh puts it in .venv)",
    )
    .with_context(|| format!("building the Python tool in {}", app_dir.display()))?;
    let component =
        std::fs::read(&output).with_context(|| format!("reading {}", output.display()))?;
    with_world_docs(component, wit)
}

/// Copies the files and folders under `from` to `to`, leaving out build outputs, caches, hidden
/// entries and symbolic links (such as a `wit` link to another tool's contract).
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let entries = std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let name = entry.file_name();
        let skipped = name
            .to_str()
            .is_none_or(|n| n.starts_with('.') || matches!(n, "target" | "__pycache__"));
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if skipped || kind.is_symlink() {
            continue;
        }
        let target = to.join(&name);
        if kind.is_dir() {
            copy_sources(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
