//! A tool project folder, as `harness new` lays it out and `harness build` builds it: a WIT
//! world in `wit/`, and the sources of one language next to it.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::Wit;
use crate::rust::RustBuild;

/// The language a tool is written in, told by the files in its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// `Cargo.toml`: a crate using `harness-guest`.
    Rust,
    /// `app.py`: a componentize-py app using `harness_tool`.
    Python,
    /// `*.c` files: bindings from `wit-bindgen-c`.
    C,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::C => "c",
        })
    }
}

/// A tool's folder: where it is, its language, and its WIT world.
#[derive(Clone, Debug)]
pub struct Project {
    /// The folder.
    pub dir: PathBuf,
    /// The language its sources are in.
    pub language: Language,
    /// Its world (from `wit/`, with `harness:tool` as a dependency).
    pub wit: Wit,
}

/// A built tool: the component and how it was made.
#[derive(Clone, Debug)]
pub struct Built {
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The toolchain that built it, in words.
    pub toolchain: String,
}

impl Project {
    /// Reads the folder `dir`: its language from its files, its world from `dir/wit` (the only
    /// world there).
    pub fn open(dir: &Path) -> Result<Project> {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        let language = if dir.join("Cargo.toml").exists() {
            Language::Rust
        } else if dir.join("app.py").exists() {
            Language::Python
        } else if !c_sources(dir)?.is_empty() {
            Language::C
        } else {
            bail!(
                "{} holds no tool sources: expected Cargo.toml (Rust), app.py (Python) or *.c (C)",
                dir.display()
            );
        };
        let wit_dir = dir.join("wit");
        if !wit_dir.is_dir() {
            bail!("{} has no wit/ folder with the tool's world", dir.display());
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            language,
            wit: Wit::tool(wit_dir, None)?,
        })
    }

    /// The tool's name: its world's name.
    pub fn name(&self) -> &str {
        &self.wit.world
    }

    /// Builds the component. Rust builds use `target_dir` (default: the folder's `target/`),
    /// so several tools can share compiled dependencies.
    pub fn build(&self, target_dir: Option<&Path>) -> Result<Built> {
        let target_dir = target_dir.map_or_else(|| self.dir.join("target"), Path::to_path_buf);
        match self.language {
            Language::Rust => {
                let build = RustBuild::detect(&target_dir)?;
                let package = cargo_package_name(&self.dir)?;
                build.compile(&self.dir, &package)?;
                Ok(Built {
                    component: build.component(&package, &self.wit)?,
                    toolchain: build.toolchain.to_string(),
                })
            }
            Language::Python => Ok(Built {
                component: crate::python::build_python(
                    &self.dir,
                    "app",
                    &self.wit,
                    &target_dir.join("python"),
                )?,
                toolchain: format!(
                    "componentize-py ({})",
                    crate::python::componentize_py().display()
                ),
            }),
            Language::C => Ok(Built {
                component: crate::c::build_c(
                    &c_sources(&self.dir)?,
                    &self.wit,
                    &target_dir.join("c"),
                )?,
                toolchain: format!("{} with wasi-libc and wit-bindgen-c", crate::c::clang()),
            }),
        }
    }
}

/// The `.c` files directly in `dir`, in name order.
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "c") {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// `package.name` of `dir/Cargo.toml`.
fn cargo_package_name(dir: &Path) -> Result<String> {
    let path = dir.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{}: no [package] name", path.display()))
}
