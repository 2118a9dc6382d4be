//! Rust tools (crates using `harness-guest`), built with whichever toolchain the machine has.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{Wit, component_from_core, run, with_world_docs};

/// A Rust toolchain that builds wasm tools here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RustToolchain {
    /// rustup's `wasm32-wasip2` target: cargo links the component itself (the documented path:
    /// `rustup target add wasm32-wasip2`).
    Wasip2,
    /// Debian's `rustc-web`, `cargo-web` and `rust-web-src` with `lld-16` and `wasi-libc`: std is
    /// built for `wasm32-wasip1` (`-Zbuild-std`) and the module is wrapped with the WASI reactor
    /// adapter. For machines where rustup cannot add targets.
    DebianWasip1,
}

/// Debian's rustc-web toolchain and the standard-library source it builds std from.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_STD_SOURCE: &str = "/usr/lib/rustlib/src/rust/library";
const DEBIAN_WASI_LIBC: &str = "/usr/lib/wasm32-wasi";

impl RustToolchain {
    /// The toolchain to use: `HARNESS_RUST_TOOLCHAIN` (`wasip2` or `debian`) if set, else
    /// rustup's `wasm32-wasip2` target if installed, else Debian's packages if installed.
    pub fn detect() -> Result<RustToolchain> {
        match std::env::var("HARNESS_RUST_TOOLCHAIN").as_deref() {
            Ok("wasip2") => return Ok(RustToolchain::Wasip2),
            Ok("debian") => return Ok(RustToolchain::DebianWasip1),
            Ok(other) => {
                bail!("HARNESS_RUST_TOOLCHAIN is {other:?}: expected `wasip2` or `debian`")
            }
            Err(_) => {}
        }
        if rustup_has_wasip2() {
            Ok(RustToolchain::Wasip2)
        } else if Path::new(DEBIAN_RUSTC).exists() && Path::new(DEBIAN_STD_SOURCE).exists() {
            Ok(RustToolchain::DebianWasip1)
        } else {
            bail!(
                "no Rust toolchain for wasm here: run `rustup target add wasm32-wasip2`, or on \
                 Debian `apt-get install rustc-web cargo-web rust-web-src lld-16 wasi-libc`"
            )
        }
    }

    /// The target triple cargo builds for.
    pub fn target(self) -> &'static str {
        match self {
            RustToolchain::Wasip2 => "wasm32-wasip2",
            RustToolchain::DebianWasip1 => "wasm32-wasip1",
        }
    }
}

impl fmt::Display for RustToolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RustToolchain::Wasip2 => "rustup's wasm32-wasip2 target",
            RustToolchain::DebianWasip1 => {
                "Debian's rustc-web (wasm32-wasip1 with -Zbuild-std, plus the WASI reactor adapter)"
            }
        })
    }
}

fn rustup_has_wasip2() -> bool {
    let Ok(output) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout);
    Path::new(sysroot.trim())
        .join("lib/rustlib/wasm32-wasip2/lib")
        .is_dir()
}

/// Builds Rust tool crates into components: [`compile`](RustBuild::compile) runs cargo,
/// [`component`](RustBuild::component) wraps each package's artifact.
#[derive(Clone, Debug)]
pub struct RustBuild {
    /// The toolchain in use.
    pub toolchain: RustToolchain,
    /// Cargo's target directory (shared by every tool built with it).
    pub target_dir: PathBuf,
}

impl RustBuild {
    /// A build with the detected toolchain into `target_dir` (relative to the current folder,
    /// not to the crate cargo runs in).
    pub fn detect(target_dir: impl Into<PathBuf>) -> Result<RustBuild> {
        let target_dir = target_dir.into();
        Ok(RustBuild {
            toolchain: RustToolchain::detect()?,
            target_dir: std::path::absolute(&target_dir)
                .with_context(|| format!("resolving {}", target_dir.display()))?,
        })
    }

    /// Runs `cargo build --release` for `package` in `dir` (its crate, or a workspace holding it).
    pub fn compile(&self, dir: &Path, package: &str) -> Result<()> {
        let cargo = match self.toolchain {
            RustToolchain::Wasip2 => "cargo",
            RustToolchain::DebianWasip1 => DEBIAN_CARGO,
        };
        let mut command = Command::new(cargo);
        command
            .current_dir(dir)
            .args(["build", "--release", "--target", self.toolchain.target()])
            .arg("--target-dir")
            .arg(&self.target_dir);
        command.args(["-p", package]);
        // Settings of an enclosing cargo (tests run under one) must not leak into this build.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "RUSTC_WRAPPER",
            "RUSTC",
        ] {
            command.env_remove(var);
        }
        if self.toolchain == RustToolchain::DebianWasip1 {
            command
                .arg("-Zbuild-std=std,panic_abort")
                .env("RUSTC", DEBIAN_RUSTC)
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_WASIP1_LINKER", "wasm-ld-16")
                .env("RUSTFLAGS", format!("-L native={DEBIAN_WASI_LIBC}"));
        }
        run(
            &mut command,
            &format!("building {} with {}", dir.display(), self.toolchain),
        )
        .with_context(|| format!("building the Rust tool in {}", dir.display()))
    }

    /// The component of `package` (compiled before), with `wit`'s world and docs.
    pub fn component(&self, package: &str, wit: &Wit) -> Result<Vec<u8>> {
        let artifact = self
            .target_dir
            .join(self.toolchain.target())
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let bytes = std::fs::read(&artifact).with_context(|| {
            format!(
                "reading {} (is `{package}` a cdylib crate that was compiled?)",
                artifact.display()
            )
        })?;
        match self.toolchain {
            RustToolchain::Wasip2 => with_world_docs(bytes, wit),
            RustToolchain::DebianWasip1 => component_from_core(bytes, wit),
        }
    }
}
