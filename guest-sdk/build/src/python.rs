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
/// component with the world's docs, using `work_dir` for the intermediate file. Takes several
/// seconds; the result is about 18 MB (the interpreter is inside).
pub fn build_python(app_dir: &Path, module: &str, wit: &Wit, work_dir: &Path) -> Result<Vec<u8>> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let output = work_dir.join(format!("{}.componentize-py.wasm", wit.world));
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
        .arg(app_dir)
        .arg("-p")
        .arg(helper_dir())
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
