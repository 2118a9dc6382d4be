//! `harness new`: a tool folder that builds with one command and tests itself — WIT world,
//! source, README and `tests.toml` — in Rust, Python or C.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::project::{Language, Project};

/// One file of a template: where it goes (under the tool's folder) and its text.
struct Template {
    path: &'static str,
    text: &'static str,
}

const COMMON: &[Template] = &[
    Template {
        path: "wit/world.wit",
        text: include_str!("../templates/common/wit/world.wit"),
    },
    Template {
        path: "tests.toml",
        text: include_str!("../templates/common/tests.toml"),
    },
    Template {
        path: "README.md",
        text: include_str!("../templates/common/README.md"),
    },
    Template {
        path: ".gitignore",
        text: "target/\n",
    },
];

const RUST: &[Template] = &[
    Template {
        path: "Cargo.toml",
        text: include_str!("../templates/rust/Cargo.toml"),
    },
    Template {
        path: "src/lib.rs",
        text: include_str!("../templates/rust/src/lib.rs"),
    },
];

const PYTHON: &[Template] = &[Template {
    path: "app.py",
    text: include_str!("../templates/python/app.py"),
}];

const C: &[Template] = &[Template {
    path: "{{c_name}}.c",
    text: include_str!("../templates/c/tool.c"),
}];

/// Creates the tool `name` in `parent/name` and returns its folder. `name` is lower-case
/// words joined by hyphens (it names the WIT package and world, the crate, and the tool).
pub fn create(parent: &Path, name: &str, language: Language) -> Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or folder",
            dir.display()
        );
    }
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rust");
    let sdk = std::path::absolute(&sdk).unwrap_or(sdk);
    let c_name = name.replace('-', "_");
    let (specific, source) = match language {
        Language::Rust => (RUST, "src/lib.rs".to_owned()),
        Language::Python => (PYTHON, "app.py".to_owned()),
        Language::C => (C, format!("{c_name}.c")),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{c_name}}", &c_name)
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{language}}", &language.to_string())
            .replace("{{source}}", &source)
    };
    for template in COMMON.iter().chain(specific) {
        let path = dir.join(fill(template.path));
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, fill(template.text))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The world must parse (a WIT keyword as the name would not): check before handing it over.
    if let Err(error) = Project::open(&dir) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(error.context(format!("`{name}` cannot name a tool")));
    }
    Ok(dir)
}

fn check_name(name: &str) -> Result<()> {
    let words_ok = name.split('-').all(|word| {
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !(words_ok && starts_with_letter) {
        bail!(
            "`{name}` cannot name a tool: use lower-case words of letters and digits joined by \
             hyphens, starting with a letter (e.g. `weather` or `order-status`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "Weather", "order_status", "-x", "x-", "9lives", "a--b"] {
            let error = create(dir.path(), bad, Language::Rust).unwrap_err();
            assert!(
                error.to_string().contains("cannot name a tool"),
                "{bad}: {error}"
            );
        }
        let error = create(dir.path(), "record", Language::Python).unwrap_err();
        assert!(
            format!("{error:#}").contains("`record` cannot name a tool"),
            "{error:#}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn each_language_gets_a_world_a_source_and_tests() {
        let dir = tempfile::tempdir().unwrap();
        for (name, language, source) in [
            ("hello-rs", Language::Rust, "src/lib.rs"),
            ("hello-py", Language::Python, "app.py"),
            ("hello-c", Language::C, "hello_c.c"),
        ] {
            let tool = create(dir.path(), name, language).unwrap();
            let project = Project::open(&tool).unwrap();
            assert_eq!(project.language, language);
            assert_eq!(project.name(), name);
            assert!(tool.join(source).is_file(), "{name}: {source}");
            assert!(tool.join("tests.toml").is_file());
            let readme = std::fs::read_to_string(tool.join("README.md")).unwrap();
            assert!(readme.contains(&format!("harness audit target/{name}.wasm")));
        }
        let error = create(dir.path(), "hello-rs", Language::C).unwrap_err();
        assert!(error.to_string().contains("already exists"));
    }
}
