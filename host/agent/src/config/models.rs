//! `[models.NAME]`: how to reach a model.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_sandbox::policy::Timeout;
use serde::Deserialize;

use super::Invalid;

/// Which API a model speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    /// OpenAI-compatible Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Responses replayed from a JSON Lines file.
    Scripted {
        /// The script (absolute).
        script: PathBuf,
    },
}

/// One `[models.NAME]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSettings {
    /// The table's name.
    pub name: String,
    /// The API it speaks.
    pub provider: Provider,
    /// The model name sent to the provider.
    pub model: String,
    /// The API root.
    pub base_url: String,
    /// The environment variable holding the API key, read when an agent is started.
    pub api_key_env: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    provider: String,
    model: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    timeout: Option<Timeout>,
    script: Option<PathBuf>,
}

impl RawModel {
    pub(crate) fn check(self, name: &str, base: &Path) -> Result<ModelSettings, Invalid> {
        let (provider, default_url, default_key) = match self.provider.as_str() {
            "openai" => (
                Provider::OpenAi,
                "https://api.openai.com/v1",
                Some("OPENAI_API_KEY"),
            ),
            "anthropic" => (
                Provider::Anthropic,
                "https://api.anthropic.com",
                Some("ANTHROPIC_API_KEY"),
            ),
            "scripted" => {
                let script = self.script.as_ref().ok_or_else(|| {
                    (
                        "script".to_owned(),
                        "a scripted model needs `script`, a JSON Lines file of responses"
                            .to_owned(),
                    )
                })?;
                let script = base.join(script);
                if !script.is_file() {
                    return Err((
                        "script".into(),
                        format!("`{}` does not exist", script.display()),
                    ));
                }
                (Provider::Scripted { script }, "", None)
            }
            other => {
                return Err((
                    "provider".into(),
                    format!("`{other}` is not a provider; use openai, anthropic or scripted"),
                ));
            }
        };
        if self.script.is_some() && !matches!(provider, Provider::Scripted { .. }) {
            return Err(("script".into(), "only a scripted model has a script".into()));
        }
        let model = match (&provider, self.model) {
            (_, Some(model)) => model,
            (Provider::Scripted { .. }, None) => name.to_owned(),
            (_, None) => {
                return Err((
                    "model".into(),
                    "name the model, e.g. \"gpt-4o-mini\"".into(),
                ));
            }
        };
        Ok(ModelSettings {
            name: name.to_owned(),
            provider,
            model,
            base_url: self.base_url.unwrap_or_else(|| default_url.to_owned()),
            api_key_env: self.api_key_env.or(default_key.map(str::to_owned)),
            timeout: self.timeout.map_or(Duration::from_secs(60), |t| t.0),
        })
    }
}
