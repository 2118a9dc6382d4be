//! Per-tool gates in `[tools.NAME]`: who may call a tool through an agent (`roles`), how often
//! (`rate`), when a human approves first (`approval`), and when the user the call is made for
//! confirms it first (`confirm`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::rate::Rate;

/// Who may call a tool and how often, checked by the agent loop before every call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolGates {
    /// The roles allowed to call it (any one suffices); `None` lets every principal call it.
    pub roles: Option<BTreeSet<String>>,
    /// Calls allowed per principal per window.
    pub rate: Option<Rate>,
    /// When a human must approve a call before it runs.
    pub approval: Option<Condition>,
    /// When the user the call is made for must confirm it before it runs: an MCP client asks
    /// its user (elicitation); an agent run, which has no one to ask, waits for an approval.
    pub confirm: Option<Condition>,
}

/// Which of a tool's calls a gate applies to: `"required"` (every call), or
/// `{ when = { priority = ["high", "urgent"] } }` (calls whose argument has one of the listed
/// values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Every call.
    Always,
    /// Calls where some argument (by name) equals one of its listed JSON values.
    When(BTreeMap<String, Vec<serde_json::Value>>),
}

impl Condition {
    /// Whether the gate applies to a call with `arguments`.
    pub fn applies(&self, arguments: &serde_json::Map<String, serde_json::Value>) -> bool {
        match self {
            Condition::Always => true,
            Condition::When(rules) => rules
                .iter()
                .any(|(name, values)| arguments.get(name).is_some_and(|v| values.contains(v))),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawCondition {
    Word(String),
    Rules {
        when: BTreeMap<String, Vec<serde_json::Value>>,
    },
}

impl RawCondition {
    pub(crate) fn check(self) -> Result<Condition, String> {
        match self {
            RawCondition::Word(word) if word == "required" => Ok(Condition::Always),
            RawCondition::Word(other) => Err(format!(
                "`{other}` is not a condition; write \"required\" or {{ when = {{ ARGUMENT = [VALUES] }} }}"
            )),
            RawCondition::Rules { when } if when.is_empty() || when.values().any(Vec::is_empty) => {
                Err("`when` needs at least one argument with at least one value".into())
            }
            RawCondition::Rules { when } => Ok(Condition::When(when)),
        }
    }
}
