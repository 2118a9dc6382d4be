//! Models behind one trait: an OpenAI-compatible Chat Completions client ([`openai`]), an
//! Anthropic Messages client ([`anthropic`]), and a scripted model that replays recorded
//! responses ([`scripted`]) for tests, demos and golden datasets. [`retry`] adds retries with
//! backoff and fallback models on top of any of them.
//!
//! The types here are the harness's own, provider-neutral conversation: each client maps them
//! to its wire format and back, keeping what the audit log needs (exact arguments as the model
//! sent them, token usage, the provider's request id).

pub mod anthropic;
mod client;
pub mod openai;
pub mod retry;
pub mod scripted;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The model a `[models.NAME]` table describes, reading its API key from `env`.
pub fn connect(
    settings: &crate::config::ModelSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<dyn Model>, ModelError> {
    use crate::config::Provider;
    use harness_sandbox::policy::SecretValue;
    // The key is checked as a header value here, once, and is never printed.
    let key = || -> Result<Option<SecretValue>, ModelError> {
        let Some(var) = settings.api_key_env.as_deref() else {
            return Ok(None);
        };
        env(var)
            .filter(|k| !k.is_empty())
            .map(|k| {
                SecretValue::new(&k).map_err(|_| {
                    ModelError::Config(format!(
                        "models.{}: {var} is not a valid header value",
                        settings.name
                    ))
                })
            })
            .transpose()
    };
    let missing_key = || {
        ModelError::Config(format!(
            "models.{}: set {} to the API key",
            settings.name,
            settings.api_key_env.as_deref().unwrap_or("api_key_env")
        ))
    };
    Ok(match &settings.provider {
        Provider::OpenAi => {
            let api_key = key()?;
            // Local OpenAI-compatible servers need no key; OpenAI itself does.
            if api_key.is_none() && settings.base_url.contains("api.openai.com") {
                return Err(missing_key());
            }
            std::sync::Arc::new(openai::OpenAiModel::new(openai::OpenAiConfig {
                base_url: settings.base_url.clone(),
                model: settings.model.clone(),
                api_key,
                timeout: settings.timeout,
            })?)
        }
        Provider::Anthropic => std::sync::Arc::new(anthropic::AnthropicModel::new(
            anthropic::AnthropicConfig {
                base_url: settings.base_url.clone(),
                model: settings.model.clone(),
                api_key: key()?.ok_or_else(missing_key)?,
                timeout: settings.timeout,
            },
        )?),
        Provider::Scripted { script } => {
            std::sync::Arc::new(scripted::ScriptedModel::load(&settings.model, script)?)
        }
    })
}

/// Agent `settings`' model with its fallbacks, retried on transient errors ([`retry`]), keys
/// read from `env`. A scripted primary model starts after the `turns` responses a resumed run
/// already used, so each run (or resumption) needs its own.
pub fn for_agent(
    config: &crate::config::Config,
    settings: &crate::config::AgentSettings,
    turns: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<dyn Model>, ModelError> {
    use crate::config::Provider;
    let primary = &config.models()[&settings.model];
    let primary: std::sync::Arc<dyn Model> = match &primary.provider {
        Provider::Scripted { script } => std::sync::Arc::new(
            scripted::ScriptedModel::load(&primary.model, script)?.starting_at(turns),
        ),
        _ => connect(primary, env)?,
    };
    let fallbacks = settings
        .fallbacks
        .iter()
        .map(|name| connect(&config.models()[name], env))
        .collect::<Result<_, _>>()?;
    Ok(std::sync::Arc::new(retry::Resilient::new(
        primary,
        fallbacks,
        retry::RetryPolicy::default(),
    )))
}

/// A future returned by [`Model::complete`].
pub type ModelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ModelResponse, ModelError>> + Send + 'a>>;

/// Something that answers a conversation with text or tool calls.
pub trait Model: Send + Sync {
    /// The provider and model, as logs and the audit trail name them.
    fn id(&self) -> ModelId;

    /// Asks for the next assistant turn.
    fn complete<'a>(&'a self, request: &'a ModelRequest) -> ModelFuture<'a>;
}

/// Which model answered: `openai` / `gpt-4o-mini`, following the OpenTelemetry GenAI names
/// (`gen_ai.provider.name`, `gen_ai.request.model`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelId {
    /// `openai`, `anthropic` or `scripted`.
    pub provider: String,
    /// The model name sent to the provider.
    pub model: String,
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// One request for the next assistant turn.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The system prompt.
    pub system: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether and which tool it must call.
    pub tool_choice: ToolChoice,
    /// Whether it may ask for several calls in one turn.
    pub parallel_tool_calls: bool,
    /// The most tokens the answer may take.
    pub max_output_tokens: u32,
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What the user said (after redaction).
    User {
        /// The text.
        text: String,
    },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// Its text, if any.
        text: Option<String>,
        /// Its tool calls, in order.
        calls: Vec<ToolCall>,
    },
    /// The results of the previous turn's tool calls, all together.
    ToolResults {
        /// One per call.
        results: Vec<ToolResult>,
    },
}

/// A tool offered to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model uses (`[a-zA-Z0-9_-]{1,64}`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments object.
    pub parameters: Value,
}

/// Whether the model must call a tool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// It decides.
    #[default]
    Auto,
    /// It must answer in text.
    None,
    /// It must call some tool.
    Required,
    /// It must call this tool.
    Tool(String),
}

/// A tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed back with its result.
    pub id: String,
    /// The tool's name as the model gave it (possibly one that does not exist).
    pub name: String,
    /// The arguments exactly as the model sent them: a JSON text that may not parse, or may
    /// not be an object. [`ToolCall::arguments`] checks it.
    pub raw_arguments: String,
}

impl ToolCall {
    /// The arguments as a JSON object, or why they are not one. Never coerced to `{}`.
    pub fn arguments(&self) -> Result<Map<String, Value>, String> {
        match serde_json::from_str::<Value>(&self.raw_arguments) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(format!(
                "the arguments must be a JSON object, not {}",
                harness_sandbox::json_kind(&other)
            )),
            Err(e) => Err(format!("the arguments are not valid JSON: {e}")),
        }
    }
}

/// What a tool call produced, as the model will read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub call_id: String,
    /// The text the model sees: the JSON result, or a plain account of the error or refusal.
    pub content: String,
    /// Whether it is an error (a tool error, a refusal by a gate, a stop).
    pub is_error: bool,
}

/// The model's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// Its text, if any.
    pub text: Option<String>,
    /// Its tool calls, in order.
    pub calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish: Finish,
    /// Tokens used.
    pub usage: TokenUsage,
    /// The model the provider says answered (may be more specific than the one asked for).
    pub model: String,
    /// The provider's id for the response, if it gave one.
    pub response_id: Option<String>,
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// It finished its answer.
    Stop,
    /// It wants its tool calls run.
    ToolCalls,
    /// It hit the output token limit (tool arguments may be cut off).
    Length,
    /// It refused, or a provider filter stopped it.
    Refused,
    /// Another reason, as the provider named it.
    Other(String),
}

/// Tokens one model call used (OpenTelemetry `gen_ai.usage.*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Input tokens, cached ones included (`gen_ai.usage.input_tokens`).
    pub input_tokens: u64,
    /// Output tokens (`gen_ai.usage.output_tokens`).
    pub output_tokens: u64,
    /// Input tokens served from the provider's cache (`gen_ai.usage.cache_read.input_tokens`).
    pub cache_read_tokens: u64,
}

impl TokenUsage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Why a model call failed. [`ModelError::is_transient`] says whether trying again may help.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The provider answered with an error status.
    #[error("{provider} answered {status}: {message}")]
    Status {
        /// Which provider.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The provider's message (or the start of its body).
        message: String,
        /// How long it asked us to wait (`retry-after`), if it did.
        retry_after: Option<Duration>,
    },
    /// No answer within the configured timeout.
    #[error("{provider} did not answer within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// Which provider.
        provider: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The provider could not be reached.
    #[error("cannot reach {provider} at {url}: {message}")]
    Unreachable {
        /// Which provider.
        provider: String,
        /// The URL tried.
        url: String,
        /// Why.
        message: String,
    },
    /// The provider's answer is not in the format it documents.
    #[error("{provider} sent an answer that cannot be read: {message}")]
    Malformed {
        /// Which provider.
        provider: String,
        /// What was wrong.
        message: String,
    },
    /// The model is not usable as configured (missing key, exhausted script, ...).
    #[error("{0}")]
    Config(String),
    /// Every model of a fallback chain failed; one entry per model, saying how.
    #[error("no model answered: {}", .0.join("; "))]
    Exhausted(Vec<String>),
}

impl ModelError {
    /// Whether the same request may succeed later: rate limits, overload, server errors,
    /// timeouts and connection failures.
    pub fn is_transient(&self) -> bool {
        match self {
            ModelError::Status { status, .. } => {
                matches!(status, 408 | 409 | 425 | 429 | 500 | 502 | 503 | 504 | 529)
            }
            ModelError::Timeout { .. } | ModelError::Unreachable { .. } => true,
            ModelError::Malformed { .. } | ModelError::Config(_) | ModelError::Exhausted(_) => {
                false
            }
        }
    }

    /// How long the provider asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(raw: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: "calc__apply".into(),
            raw_arguments: raw.into(),
        }
    }

    #[test]
    fn arguments_are_checked_never_coerced() {
        assert_eq!(call(r#"{"a": 1}"#).arguments().unwrap()["a"], 1);
        assert!(
            call("{\"a\": ")
                .arguments()
                .unwrap_err()
                .starts_with("the arguments are not valid JSON")
        );
        assert_eq!(
            call("[1]").arguments().unwrap_err(),
            "the arguments must be a JSON object, not an array"
        );
        assert_eq!(
            call("").arguments().unwrap_err().split(':').next(),
            Some("the arguments are not valid JSON")
        );
    }

    #[test]
    fn transient_errors_are_the_ones_worth_retrying() {
        let status = |status| ModelError::Status {
            provider: "openai".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_transient());
        assert!(status(503).is_transient());
        assert!(status(529).is_transient());
        assert!(!status(400).is_transient());
        assert!(!status(401).is_transient());
        assert!(!ModelError::Config("no key".into()).is_transient());
    }
}
