//! `[agents.NAME]`: which model, prompt (and canary), tools, routes, limits and output schema
//! an agent uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Invalid;
use super::budgets::{Alerts, Budgets};
use super::models::ModelSettings;
use crate::guards::pii::PiiPolicy;

/// One version of a system prompt: an inline `system` string or a `prompt` file, identified by
/// the hash of its text so every run records exactly which words the model was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The text.
    pub text: String,
    /// The first 12 hex digits of the text's SHA-256.
    pub version: String,
    /// The file it came from, or `inline`.
    pub source: String,
}

impl Prompt {
    fn new(text: String, source: String) -> Prompt {
        use sha2::Digest as _;
        let version = hex::encode(sha2::Sha256::digest(text.as_bytes()))[..12].to_owned();
        Prompt {
            text,
            version,
            source,
        }
    }
}

/// A prompt version served to `percent` of principals, chosen by a hash of the agent and the
/// principal: the same principal always gets the same version. Removing the table (or a
/// percent of 0) rolls back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canary {
    /// The new version.
    pub prompt: Prompt,
    /// The share of principals that get it, 0 to 100.
    pub percent: u8,
}

impl AgentSettings {
    /// The prompt `principal` gets, and whether it is the canary.
    pub fn prompt_for(&self, principal: &str) -> (&Prompt, bool) {
        use sha2::Digest as _;
        match &self.canary {
            Some(canary) => {
                let digest = sha2::Sha256::digest(format!("{}\n{principal}", self.name));
                let bucket = u16::from_be_bytes([digest[0], digest[1]]) % 100;
                if bucket < u16::from(canary.percent) {
                    (&canary.prompt, true)
                } else {
                    (&self.prompt, false)
                }
            }
            None => (&self.prompt, false),
        }
    }
}

/// One `[agents.NAME]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSettings {
    /// The table's name.
    pub name: String,
    /// The model (a `[models]` name).
    pub model: String,
    /// Models to fall back to, in order.
    pub fallbacks: Vec<String>,
    /// The system prompt most principals get.
    pub prompt: Prompt,
    /// A new prompt version rolled out to a share of principals.
    pub canary: Option<Canary>,
    /// The tools it may offer and call (whitelist names).
    pub tools: Vec<String>,
    /// Model turns before the run stops without an answer.
    pub max_turns: u32,
    /// Largest answer, in tokens.
    pub max_output_tokens: u32,
    /// Malformed or invalid tool arguments tolerated per run before it stops.
    pub max_argument_errors: u32,
    /// The budgets its runs count toward (the whitelist's `[budgets]`).
    pub budgets: Budgets,
    /// What happens to personal data and secrets before text reaches the model.
    pub pii: PiiPolicy,
    /// The longest user input accepted, in characters.
    pub max_input_chars: usize,
    /// Thresholds that raise alerts (the whitelist's `[alerts]`).
    pub alerts: Alerts,
    /// Intent routes, tried in order (`[[agents.NAME.routes]]`).
    pub routes: Vec<RouteRule>,
    /// A JSON Schema the final answer must match (the answer is then JSON).
    pub output_schema: Option<OutputSchema>,
    /// Answers that miss the schema tolerated per run; each is sent back with the reason.
    pub max_output_retries: u32,
}

/// One intent route: requests containing one of `when` (whole words, any case) may use only
/// `tools`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Its name, recorded with each run.
    pub name: String,
    /// Words that select it.
    pub when: Vec<String>,
    /// The tools it allows (a subset of the agent's).
    pub tools: Vec<String>,
}

/// The JSON Schema of an agent's final answer, from `output_schema = "FILE"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSchema {
    /// The schema.
    pub schema: serde_json::Value,
    /// The file it came from.
    pub source: String,
}

impl OutputSchema {
    /// Why `answer` does not match, or `None` when it does.
    pub fn problem(&self, answer: &str) -> Option<String> {
        let value: serde_json::Value = match serde_json::from_str(answer.trim()) {
            Ok(value) => value,
            Err(e) => return Some(format!("the answer is not JSON: {e}")),
        };
        let validator = match jsonschema::validator_for(&self.schema) {
            Ok(validator) => validator,
            Err(e) => return Some(format!("the schema {} is invalid: {e}", self.source)),
        };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!(
                    "{}: {e}",
                    if at.is_empty() {
                        "the answer"
                    } else {
                        at.as_str()
                    }
                )
            })
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    model: String,
    #[serde(default)]
    fallbacks: Vec<String>,
    system: Option<String>,
    prompt: Option<PathBuf>,
    canary: Option<RawCanary>,
    tools: Option<Vec<String>>,
    max_turns: Option<u32>,
    max_output_tokens: Option<u32>,
    max_argument_errors: Option<u32>,
    #[serde(default)]
    pii: BTreeMap<String, String>,
    max_input_chars: Option<usize>,
    output_schema: Option<PathBuf>,
    max_output_retries: Option<u32>,
    #[serde(default)]
    routes: Vec<RouteRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCanary {
    prompt: PathBuf,
    percent: u8,
}

/// Reads a prompt file (relative to the whitelist); errors name it.
fn prompt_file(base: &Path, file: &Path, key: &str) -> Result<Prompt, Invalid> {
    let path = base.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        (
            key.to_owned(),
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    Ok(Prompt::new(text, path.display().to_string()))
}

/// Reads and compiles a JSON Schema file; errors name it.
fn output_schema(base: &Path, file: &Path) -> Result<OutputSchema, Invalid> {
    let path = base.join(file);
    let invalid = |message: String| ("output_schema".to_owned(), message);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(format!("cannot read `{}`: {e}", path.display())))?;
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("`{}` is not JSON: {e}", path.display())))?;
    jsonschema::validator_for(&schema).map_err(|e| {
        invalid(format!(
            "`{}` is not a valid JSON Schema: {e}",
            path.display()
        ))
    })?;
    Ok(OutputSchema {
        schema,
        source: path.display().to_string(),
    })
}

impl RawAgent {
    pub(crate) fn check(
        self,
        name: &str,
        models: &BTreeMap<String, ModelSettings>,
        tools: &BTreeSet<&str>,
        budgets: &Budgets,
        alerts: &Alerts,
        base: &Path,
    ) -> Result<AgentSettings, Invalid> {
        let prompt = match (self.system, &self.prompt) {
            (Some(_), Some(_)) => {
                return Err((
                    "prompt".into(),
                    "give `system` (inline) or `prompt` (a file), not both".into(),
                ));
            }
            (Some(text), None) => Prompt::new(text, "inline".into()),
            (None, Some(file)) => prompt_file(base, file, "prompt")?,
            (None, None) => Prompt::new(String::new(), "inline".into()),
        };
        let canary = match self.canary {
            Some(RawCanary { percent, .. }) if percent > 100 => {
                return Err(("canary.percent".into(), format!("{percent} is over 100")));
            }
            Some(raw) => Some(Canary {
                prompt: prompt_file(base, &raw.prompt, "canary.prompt")?,
                percent: raw.percent,
            }),
            None => None,
        };
        for (key, model) in std::iter::once(("model", &self.model))
            .chain(self.fallbacks.iter().map(|f| ("fallbacks", f)))
        {
            if !models.contains_key(model) {
                return Err((key.into(), format!("no [models.{model}] in this whitelist")));
            }
        }
        let agent_tools = match self.tools {
            Some(list) => {
                if let Some(unknown) = list.iter().find(|t| !tools.contains(t.as_str())) {
                    return Err((
                        "tools".into(),
                        format!("`{unknown}` is not a whitelisted tool"),
                    ));
                }
                list
            }
            None => tools.iter().map(|t| (*t).to_owned()).collect(),
        };
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(unknown) = route.tools.iter().find(|t| !agent_tools.contains(t)) {
                return Err((
                    format!("routes[{i}].tools"),
                    format!("`{unknown}` is not one of this agent's tools"),
                ));
            }
            if route.when.is_empty() {
                return Err((format!("routes[{i}].when"), "give at least one word".into()));
            }
        }
        let routes = self
            .routes
            .into_iter()
            .map(|r| RouteRule {
                when: r.when.iter().map(|w| w.to_lowercase()).collect(),
                ..r
            })
            .collect();
        let max_turns = self.max_turns.unwrap_or(8);
        if !(1..=100).contains(&max_turns) {
            return Err((
                "max_turns".into(),
                format!("{max_turns} is out of range; use 1 to 100"),
            ));
        }
        Ok(AgentSettings {
            name: name.to_owned(),
            model: self.model,
            fallbacks: self.fallbacks,
            prompt,
            canary,
            tools: agent_tools,
            max_turns,
            max_output_tokens: self.max_output_tokens.unwrap_or(1024),
            max_argument_errors: self.max_argument_errors.unwrap_or(2),
            budgets: budgets.clone(),
            pii: PiiPolicy::parse(&self.pii).map_err(|(kind, msg)| (format!("pii.{kind}"), msg))?,
            max_input_chars: self.max_input_chars.unwrap_or(20_000),
            output_schema: self
                .output_schema
                .map(|file| output_schema(base, &file))
                .transpose()?,
            max_output_retries: self.max_output_retries.unwrap_or(2),
            alerts: alerts.clone(),
            routes,
        })
    }
}
