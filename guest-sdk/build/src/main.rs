//! `harness-build`: turns a tool's sources and WIT world into a component, and prints the
//! whitelist entry that pins it.
//!
//! ```text
//! harness-build c tools/calc/calc.c --wit tools/calc/wit --world calc -o calc.wasm
//! harness-build wat tool.wat --wit tool.wit --world tool -o tool.wasm
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use harness_build::Wit;
use sha2::{Digest, Sha256};

/// Build a Harness tool component from C or WAT sources and a WIT world.
#[derive(Parser)]
#[command(name = "harness-build", version, about)]
struct Args {
    /// The source language.
    lang: Lang,
    /// Source files (one for WAT).
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The tool's WIT file or folder.
    #[arg(long)]
    wit: PathBuf,
    /// The world to build.
    #[arg(long)]
    world: String,
    /// WIT packages the world depends on (default: the repository's `wit/`, for `harness:tool`).
    #[arg(long = "dep")]
    deps: Vec<PathBuf>,
    /// The component to write.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Lang {
    C,
    Wat,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let deps = if args.deps.is_empty() {
        vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../wit")]
    } else {
        args.deps
    };
    let wit = Wit {
        deps,
        path: args.wit,
        world: args.world.clone(),
    };
    let bytes = match args.lang {
        Lang::C => {
            let work = std::env::temp_dir().join(format!(
                "harness-build-{}-{}",
                args.world,
                std::process::id()
            ));
            let built = harness_build::build_c(&args.sources, &wit, &work);
            let _ = std::fs::remove_dir_all(&work);
            built?
        }
        Lang::Wat => {
            let text = std::fs::read_to_string(&args.sources[0])
                .with_context(|| format!("reading {}", args.sources[0].display()))?;
            harness_build::component_from_wat(&text, &wit)?
        }
    };
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let component = std::path::absolute(&args.output)?;
    println!(
        "[tools.{}]\ncomponent = {:?}\nsha256 = \"{}\"\n",
        args.world,
        component.display().to_string(),
        hex::encode(Sha256::digest(&bytes))
    );
    eprintln!(
        "harness-build: wrote {} ({} bytes)",
        args.output.display(),
        bytes.len()
    );
    Ok(())
}
