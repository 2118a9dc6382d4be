//! `[budgets]` (hard limits per period) and `[alerts]` (thresholds that raise an alert), shared
//! by every agent's runs.

use std::time::Duration;

use serde::Deserialize;

use super::rate::Rate;

/// The `[budgets]` table: hard limits per period, shared by every agent's runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Model tokens per principal (`"20000/day"`).
    pub user_tokens: Option<Rate>,
    /// Model tokens for everyone together.
    pub global_tokens: Option<Rate>,
    /// Tool fuel per principal.
    pub user_fuel: Option<Rate>,
}

/// What one budget scope (`tokens:global`, `tokens:user:NAME`, `fuel:user:NAME`) has spent in
/// its current window, against its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The scope.
    pub scope: String,
    /// Spent in the window (reservations not settled yet count in full).
    pub spent: u64,
    /// The limit per window.
    pub limit: u64,
    /// The window.
    pub window: Duration,
}

impl Budgets {
    /// Every scope of these budgets with spending in its current window, by budget.
    pub fn standings(
        &self,
        state: &crate::state::StateStore,
    ) -> Result<Vec<Standing>, crate::state::StateError> {
        let limits = [
            ("tokens:global", self.global_tokens),
            ("tokens:user:", self.user_tokens),
            ("fuel:user:", self.user_fuel),
        ];
        let mut standings = Vec::new();
        for (prefix, limit) in limits {
            let Some(limit) = limit else { continue };
            for (scope, spent) in state.spending(limit.per)? {
                if scope.starts_with(prefix) {
                    standings.push(Standing {
                        scope,
                        spent,
                        limit: limit.count,
                        window: limit.per,
                    });
                }
            }
        }
        Ok(standings)
    }
}

/// The `[alerts]` table: thresholds that raise an `alert.raised` audit record and a warning on
/// the `harness::alert` log target, and are delivered to `webhooks`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// A run that uses more tokens than this.
    pub run_tokens: Option<u64>,
    /// A tool function whose recent calls fail this often.
    pub tool_error_rate: Option<ErrorRate>,
    /// Where each raised alert is POSTed as JSON (with a Slack-compatible `text`).
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// A webhook alerts are POSTed to: `{ url = "https://…", headers_from_env = { Authorization =
/// "ALERT_TOKEN" } }`, each header's value read from the named environment variable when an
/// alert is sent, so no secret sits in the whitelist.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// An `http` or `https` URL.
    pub url: String,
    /// Header name → the environment variable holding its value.
    #[serde(default)]
    pub headers_from_env: std::collections::BTreeMap<String, String>,
}

impl Alerts {
    /// Checks the webhooks: `Err` names the key and what is wrong.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        for (index, hook) in self.webhooks.iter().enumerate() {
            let key = format!("alerts.webhooks[{index}]");
            match reqwest::Url::parse(&hook.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(url) => {
                    return Err((
                        format!("{key}.url"),
                        format!("`{}` is not an http or https URL", url.scheme()),
                    ));
                }
                Err(error) => return Err((format!("{key}.url"), format!("{}: {error}", hook.url))),
            }
            for (header, var) in &hook.headers_from_env {
                if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err((
                        format!("{key}.headers_from_env"),
                        format!("`{header}` is not a header name"),
                    ));
                }
                if var.is_empty() {
                    return Err((
                        format!("{key}.headers_from_env.{header}"),
                        "name the environment variable that holds the value".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// When a tool's error rate raises an alert.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRate {
    /// The share of failed calls, 0 to 1.
    pub threshold: f64,
    /// Calls needed in the window before the rate counts.
    #[serde(default = "default_min_calls")]
    pub min_calls: u64,
    /// The window.
    #[serde(default = "default_window", with = "humantime_serde_window")]
    pub window: Duration,
}

fn default_min_calls() -> u64 {
    5
}

fn default_window() -> Duration {
    Duration::from_secs(3600)
}

/// `window = "10m"` in the whitelist.
mod humantime_serde_window {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(harness_sandbox::policy::Timeout::deserialize(d)?.0)
    }
}
