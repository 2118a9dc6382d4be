//! Intent routing: before the model sees any tool, a router classifies the request and picks
//! the tools it may be offered and may call. The built-in [`KeywordRouter`] follows the agent's
//! `routes` (first route whose words appear in the request); embedders plug in their own
//! [`Router`] (a classifier model, say) with [`Agent::with_router`](crate::run::Agent::with_router).

use serde::{Deserialize, Serialize};

use crate::config::AgentSettings;

/// Where a request was routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The route's name (`default` when no rule matched).
    pub name: String,
    /// The tools the run may use.
    pub tools: Vec<String>,
}

/// Decides which of an agent's tools a request may reach.
pub trait Router: Send + Sync {
    /// The route for `input` (the user's words, after masking).
    fn route(&self, input: &str) -> Route;
}

/// Routes by words: the first rule with a word found in the request (case-insensitive, whole
/// words) gives the tools; no match gives every tool of the agent.
pub struct KeywordRouter {
    rules: Vec<crate::config::RouteRule>,
    all: Vec<String>,
}

impl KeywordRouter {
    /// The router of `agent`'s `routes`.
    pub fn new(agent: &AgentSettings) -> KeywordRouter {
        KeywordRouter {
            rules: agent.routes.clone(),
            all: agent.tools.clone(),
        }
    }
}

impl Router for KeywordRouter {
    fn route(&self, input: &str) -> Route {
        let words: Vec<String> = input
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        self.rules
            .iter()
            .find(|rule| rule.when.iter().any(|w| words.contains(w)))
            .map_or_else(
                || Route {
                    name: "default".into(),
                    tools: self.all.clone(),
                },
                |rule| Route {
                    name: rule.name.clone(),
                    tools: rule.tools.clone(),
                },
            )
    }
}
