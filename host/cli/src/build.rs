//! `harness new`, `harness build` and `harness test`: from nothing to a pinned, tested tool.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use harness_build::project::{Language, Project};
use harness_sandbox::{CallContext, Host, Outcome, Policy, Sha256Digest};
use serde::Deserialize;
use serde_json::Value;

use crate::exit::Exit;

/// `harness new`: scaffolds the tool and says what to do next.
pub fn new(name: &str, language: Language, parent: &Path) -> Result<Exit> {
    let dir = harness_build::scaffold::create(parent, name, language)?;
    println!("created {} ({language})", dir.display());
    println!(
        "next: harness test {}    # build it and run its tests.toml",
        dir.display()
    );
    println!(
        "      harness build {}   # print its whitelist entry",
        dir.display()
    );
    Ok(Exit::Success)
}

/// A component written to disk, with its digest.
struct Output {
    name: String,
    path: PathBuf,
    sha256: String,
}

/// Builds the tool in `dir` into `output` (default `dir/target/NAME.wasm`), saying how.
fn build_to(dir: &Path, output: Option<&Path>, target_dir: Option<&Path>) -> Result<Output> {
    let project = Project::open(dir)?;
    eprintln!(
        "harness: building {} ({}) …",
        project.name(),
        project.language
    );
    let built = project.build(target_dir)?;
    let path = output.map_or_else(
        || dir.join("target").join(format!("{}.wasm", project.name())),
        Path::to_path_buf,
    );
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    std::fs::write(&path, &built.component)
        .with_context(|| format!("writing {}", path.display()))?;
    let path = std::path::absolute(&path)?;
    eprintln!(
        "harness: built {} with {} ({})",
        path.display(),
        built.toolchain,
        bytesize::ByteSize(built.component.len() as u64)
            .display()
            .iec()
    );
    Ok(Output {
        name: project.name().to_owned(),
        path,
        sha256: Sha256Digest::of(&built.component).to_string(),
    })
}

/// `harness build`: builds and prints the whitelist entry that pins the component.
pub fn build(dir: &Path, output: Option<&Path>, target_dir: Option<&Path>) -> Result<Exit> {
    let built = build_to(dir, output, target_dir)?;
    println!(
        "[tools.{}]\ncomponent = {:?}\nsha256 = \"{}\"",
        built.name,
        built.path.display().to_string(),
        built.sha256
    );
    Ok(Exit::Success)
}

/// A tool's `tests.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tests {
    /// What the tool is granted while testing: the keys of a whitelist entry.
    #[serde(default)]
    grants: toml::Table,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// One call and what it must return.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The function, without the tool's name.
    function: String,
    #[serde(default)]
    arguments: toml::Table,
    /// The expected result, for a call that must succeed.
    ok: Option<toml::Value>,
    /// The expected error value, for a call that must return its error.
    error: Option<toml::Value>,
    /// Who calls (default `tester`).
    #[serde(default = "default_principal")]
    principal: String,
    /// The caller's roles.
    #[serde(default)]
    roles: Vec<String>,
}

fn default_principal() -> String {
    "tester".into()
}

/// `harness test`: builds the tool, loads it with `tests.toml`'s grants, and runs its cases.
pub fn test(dir: &Path, target_dir: Option<&Path>) -> Result<Exit> {
    let tests_path = dir.join("tests.toml");
    let text = std::fs::read_to_string(&tests_path)
        .with_context(|| format!("reading {}", tests_path.display()))?;
    let tests: Tests =
        toml::from_str(&text).with_context(|| format!("parsing {}", tests_path.display()))?;
    for (i, case) in tests.cases.iter().enumerate() {
        if case.ok.is_some() == case.error.is_some() {
            bail!(
                "{}: case {} ({}) needs exactly one of `ok` and `error`",
                tests_path.display(),
                i + 1,
                case.function
            );
        }
    }
    let built = build_to(dir, None, target_dir)?;
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let policy_path = scratch.path().join("harness.toml");
    let policy_text = test_policy(&built, &tests.grants, dir, scratch.path())?;
    std::fs::write(&policy_path, &policy_text)
        .with_context(|| format!("writing {}", policy_path.display()))?;
    let host = Host::load(Policy::parse(&policy_text, &policy_path)?).with_context(|| {
        format!(
            "loading {} with the grants of {}",
            built.name,
            tests_path.display()
        )
    })?;
    let runtime = crate::load::runtime()?;
    let mut failed = 0;
    for case in &tests.cases {
        let arguments = serde_json::to_value(&case.arguments)?;
        let caller = CallContext {
            roles: case.roles.clone(),
            ..CallContext::new(&case.principal, "harness-test")
        };
        let function = format!("{}.{}", built.name, case.function);
        let got = match runtime.block_on(host.call(&function, &arguments.to_string(), &caller)) {
            Ok(report) => match report.outcome {
                Outcome::Ok { value } => ("ok", value),
                Outcome::ToolError { error } => ("error", error),
                Outcome::Stopped { stop } => ("stopped", Value::String(stop.to_string())),
                other => ("ended", Value::String(other.kind().to_owned())),
            },
            Err(refused) => ("refused", Value::String(refused.to_string())),
        };
        let wanted = match (&case.ok, &case.error) {
            (Some(ok), _) => ("ok", serde_json::to_value(ok)?),
            (_, Some(error)) => ("error", serde_json::to_value(error)?),
            (None, None) => unreachable!("checked when tests.toml was read"),
        };
        if got == wanted {
            println!("  ok    {} {arguments}", case.function);
        } else {
            failed += 1;
            println!(
                "  FAIL  {} {arguments}: expected {} {}, got {} {}",
                case.function, wanted.0, wanted.1, got.0, got.1
            );
        }
    }
    println!("{} passed, {failed} failed", tests.cases.len() - failed);
    Ok(if failed == 0 {
        Exit::Success
    } else {
        Exit::Failed
    })
}

/// A whitelist holding only the built tool, with `grants`; relative `fs` hosts are taken from
/// the tool's folder, and storage goes to `scratch`.
fn test_policy(built: &Output, grants: &toml::Table, dir: &Path, scratch: &Path) -> Result<String> {
    let mut tool = grants.clone();
    if let Some(toml::Value::Array(mounts)) = tool.get_mut("fs") {
        for mount in mounts {
            if let Some(toml::Value::String(host)) = mount.get_mut("host") {
                *host = std::path::absolute(dir.join(&*host))?.display().to_string();
            }
        }
    }
    tool.insert("component".into(), built.path.display().to_string().into());
    tool.insert("sha256".into(), built.sha256.clone().into());
    let mut policy = toml::Table::new();
    policy.insert(
        "host".into(),
        toml::Value::Table(toml::Table::from_iter([
            (
                "cache_dir".to_owned(),
                scratch.join("cache").display().to_string().into(),
            ),
            (
                "data_dir".to_owned(),
                scratch.join("data").display().to_string().into(),
            ),
        ])),
    );
    policy.insert(
        "tools".into(),
        toml::Value::Table(toml::Table::from_iter([(built.name.clone(), tool.into())])),
    );
    Ok(toml::to_string(&policy)?)
}

/// Parses `--lang`.
pub fn parse_language(text: &str) -> Result<Language, String> {
    match text {
        "rust" => Ok(Language::Rust),
        "python" => Ok(Language::Python),
        "c" => Ok(Language::C),
        other => Err(format!(
            "unknown language `{other}`: expected rust, python or c"
        )),
    }
}
