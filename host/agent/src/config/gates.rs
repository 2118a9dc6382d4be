//! Per-tool gates in `[tools.NAME]`: who may call a tool through an agent (`roles`), how often
//! (`rate`), and when a human approves first (`approval`).

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
    pub approval: Option<Approval>,
}

/// When a tool's calls wait for a human: `approval = "required"` (every call), or
/// `approval = { when = { priority = ["high", "urgent"] } }` (calls whose argument has one of
/// the listed values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    /// Every call.
    Always,
    /// Calls where some argument (by name) equals one of its listed JSON values.
    When(BTreeMap<String, Vec<serde_json::Value>>),
}

impl Approval {
    /// Whether a call with `arguments` needs approval.
    pub fn applies(&self, arguments: &serde_json::Map<String, serde_json::Value>) -> bool {
        match self {
            Approval::Always => true,
            Approval::When(rules) => rules
                .iter()
                .any(|(name, values)| arguments.get(name).is_some_and(|v| values.contains(v))),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawApproval {
    Word(String),
    Rules {
        when: BTreeMap<String, Vec<serde_json::Value>>,
    },
}

impl RawApproval {
    pub(crate) fn check(self) -> Result<Approval, String> {
        match self {
            RawApproval::Word(word) if word == "required" => Ok(Approval::Always),
            RawApproval::Word(other) => Err(format!(
                "`{other}` is not an approval; write \"required\" or {{ when = {{ ARGUMENT = [VALUES] }} }}"
            )),
            RawApproval::Rules { when } if when.is_empty() || when.values().any(Vec::is_empty) => {
                Err("`when` needs at least one argument with at least one value".into())
            }
            RawApproval::Rules { when } => Ok(Approval::When(when)),
        }
    }
}
