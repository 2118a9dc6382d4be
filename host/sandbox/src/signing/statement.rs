//! What a signature covers: a tool's name, its component's digest and its whitelist entry, in one
//! canonical JSON document, so the same entry always gives the same bytes.

use serde_json::{Map, Value};

use crate::convert::canonical_json;
use crate::digest::Sha256Digest;
use crate::policy::Limits;

/// The version tag inside every statement; a reader refuses statements of another format.
const FORMAT: &str = "harness-tool-signature/v1";

/// Keys of a `[tools.NAME]` table that say where the component is or how it is signed, not what
/// it may do: they are left out of what is signed. The limit keys are replaced by the effective
/// limits (after `[defaults]`).
const UNSIGNED_KEYS: &[&str] = &[
    "component",
    "sha256",
    "signature",
    "require_signatures",
    "fuel",
    "memory",
    "timeout",
    "max_output",
    "max_input",
    "strict",
];

/// A tool as a reviewer approved it: name, component digest, and the entry (grants, effective
/// limits, gates) exactly as the whitelist states it.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    tool: String,
    sha256: Sha256Digest,
    entry: Value,
}

impl Statement {
    /// The statement for tool `tool` pinned to `sha256`, from its table as written (`table`) and
    /// its effective limits and `strict`.
    pub(crate) fn new(
        tool: &str,
        sha256: Sha256Digest,
        table: &toml::Table,
        limits: &Limits,
        strict: bool,
    ) -> Self {
        let mut entry: Map<String, Value> = table
            .iter()
            .filter(|(key, _)| !UNSIGNED_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), toml_to_json(value)))
            .collect();
        entry.insert("fuel".into(), limits.fuel.into());
        entry.insert("memory".into(), limits.memory.0.into());
        entry.insert(
            "timeout".into(),
            humantime::format_duration(limits.timeout)
                .to_string()
                .into(),
        );
        entry.insert("max_output".into(), limits.max_output.0.into());
        entry.insert("max_input".into(), limits.max_input.0.into());
        entry.insert("strict".into(), strict.into());
        Self {
            tool: tool.to_owned(),
            sha256,
            entry: canonical_json(&Value::Object(entry)),
        }
    }

    /// The tool's name.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The component digest it covers.
    pub fn sha256(&self) -> Sha256Digest {
        self.sha256
    }

    /// The bytes that are signed: the statement as canonical JSON (keys sorted, no spaces).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("JSON values serialize")
    }

    /// The statement as a JSON document.
    pub fn to_json(&self) -> Value {
        canonical_json(&serde_json::json!({
            "format": FORMAT,
            "tool": self.tool,
            "sha256": self.sha256.to_string(),
            "entry": self.entry,
        }))
    }

    /// Reads a statement back from its JSON document.
    pub(crate) fn from_json(value: &Value) -> Result<Self, String> {
        let field = |name: &str| value.get(name).ok_or(format!("no `{name}`"));
        if field("format")? != FORMAT {
            return Err(format!("`format` is not `{FORMAT}`"));
        }
        let tool = field("tool")?.as_str().ok_or("`tool` is not a string")?;
        let sha256 = field("sha256")?
            .as_str()
            .ok_or("`sha256` is not a string")?
            .parse()
            .map_err(|e| format!("`sha256`: {e}"))?;
        let entry = field("entry")?;
        if !entry.is_object() {
            return Err("`entry` is not an object".into());
        }
        Ok(Self {
            tool: tool.to_owned(),
            sha256,
            entry: canonical_json(entry),
        })
    }

    /// Where this entry differs from the signed one, key by key (`http[0].methods`), each with
    /// both values.
    pub(crate) fn entry_differences(&self, signed: &Statement) -> Vec<Difference> {
        let mut out = Vec::new();
        diff(&signed.entry, &self.entry, String::new(), &mut out);
        out
    }
}

/// One key whose value is not the signed one.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// The key inside the tool's table, dotted (`http[0].methods`, `fuel`).
    pub key: String,
    /// Its value when signed; `None` when it was absent.
    pub signed: Option<Value>,
    /// Its value in the whitelist now; `None` when it is absent.
    pub now: Option<Value>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or("(absent)".into(), Value::to_string);
        write!(
            f,
            "{}: signed {}, now {}",
            self.key,
            show(&self.signed),
            show(&self.now)
        )
    }
}

fn diff(signed: &Value, now: &Value, key: String, out: &mut Vec<Difference>) {
    let child = |name: &str| {
        if key.is_empty() {
            name.to_owned()
        } else {
            format!("{key}.{name}")
        }
    };
    match (signed, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                match (a.get(name), b.get(name)) {
                    (Some(x), Some(y)) => diff(x, y, child(name), out),
                    (x, y) => out.push(Difference {
                        key: child(name),
                        signed: x.cloned(),
                        now: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, format!("{key}[{i}]"), out);
            }
        }
        _ if signed != now => out.push(Difference {
            key,
            signed: Some(signed.clone()),
            now: Some(now.clone()),
        }),
        _ => {}
    }
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => items.iter().map(toml_to_json).collect(),
        toml::Value::Table(table) => table
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect::<Map<_, _>>()
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(table: &str, limits: Limits) -> Statement {
        let table: toml::Table = toml::from_str(table).unwrap();
        Statement::new("fetch", Sha256Digest::of(b"x"), &table, &limits, false)
    }

    #[test]
    fn the_same_entry_written_differently_gives_the_same_bytes() {
        let a = statement(
            "component = \"a.wasm\"\nhttp = [{ url = \"https://x\", methods = [\"GET\"] }]\nroles = [\"a\"]",
            Limits::default(),
        );
        let b = statement(
            "roles = [\"a\"]\n[[http]]\nmethods = [\"GET\"]\nurl = \"https://x\"",
            Limits::default(),
        );
        assert_eq!(a.to_bytes(), b.to_bytes());
        let back = Statement::from_json(&serde_json::from_slice(&a.to_bytes()).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn differences_name_the_key_and_both_values() {
        let signed = statement(
            "http = [{ url = \"https://x\", methods = [\"GET\"] }]",
            Limits::default(),
        );
        let now = statement(
            "http = [{ url = \"https://x\", methods = [\"GET\", \"POST\"] }]\nkv = { quota = \"1 MiB\" }",
            Limits {
                fuel: 5,
                ..Limits::default()
            },
        );
        let found: Vec<String> = now
            .entry_differences(&signed)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "fuel: signed 200000000, now 5",
                "http[0].methods: signed [\"GET\"], now [\"GET\",\"POST\"]",
                "kv: signed (absent), now {\"quota\":\"1 MiB\"}",
            ]
        );
    }
}
