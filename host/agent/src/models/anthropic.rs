//! Anthropic Messages (`POST {base_url}/v1/messages`): `tool_use` blocks in, `tool_result`
//! blocks back in one user turn.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::client::JsonClient;
use super::{
    Finish, Message, Model, ModelError, ModelFuture, ModelId, ModelRequest, ModelResponse,
    TokenUsage, ToolCall, ToolChoice,
};
use harness_sandbox::policy::SecretValue;

/// The API version this client speaks.
const API_VERSION: &str = "2023-06-01";

/// How to reach Anthropic's API.
#[derive(Clone, Debug)]
pub struct AnthropicConfig {
    /// The API root, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The API key (`x-api-key`; prints as `[redacted]`).
    pub api_key: SecretValue,
    /// How long one request may take.
    pub timeout: Duration,
}

/// A Messages API client.
#[derive(Debug)]
pub struct AnthropicModel {
    config: AnthropicConfig,
    client: JsonClient,
}

impl AnthropicModel {
    /// A client for `config`.
    pub fn new(config: AnthropicConfig) -> Result<AnthropicModel, ModelError> {
        let client = JsonClient::new("anthropic", config.timeout)?;
        Ok(AnthropicModel { config, client })
    }

    /// The exact JSON body sent for `request`.
    pub fn request_body(&self, request: &ModelRequest) -> Value {
        // Turns of the same role are merged: tool results and the user's next words share one
        // user turn, as the API expects.
        let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
        for message in &request.messages {
            let (role, blocks) = match message {
                Message::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
                Message::Assistant { text, calls } => {
                    let text = text
                        .iter()
                        .filter(|t| !t.is_empty())
                        .map(|t| json!({"type": "text", "text": t}));
                    let uses = calls.iter().map(|c| {
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input_object(c)})
                    });
                    ("assistant", text.chain(uses).collect())
                }
                Message::ToolResults { results } => (
                    "user",
                    results
                        .iter()
                        .map(|r| {
                            json!({"type": "tool_result", "tool_use_id": r.call_id,
                                   "content": r.content, "is_error": r.is_error})
                        })
                        .collect(),
                ),
            };
            match turns.last_mut() {
                Some((last, content)) if *last == role => content.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": request.max_output_tokens,
            "messages": turns.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect::<Vec<_>>(),
        });
        if !request.system.is_empty() {
            body["system"] = json!(request.system);
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
            let no_parallel = !request.parallel_tool_calls;
            body["tool_choice"] = match &request.tool_choice {
                ToolChoice::Auto => {
                    json!({"type": "auto", "disable_parallel_tool_use": no_parallel})
                }
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => {
                    json!({"type": "any", "disable_parallel_tool_use": no_parallel})
                }
                ToolChoice::Tool(name) => {
                    json!({"type": "tool", "name": name, "disable_parallel_tool_use": no_parallel})
                }
            };
        }
        body
    }

    fn parse(&self, body: &Value) -> Result<ModelResponse, ModelError> {
        let blocks = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| self.client.malformed("no `content` array"))?;
        let mut text = String::new();
        let mut calls = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""))
                }
                Some("tool_use") => {
                    let field = |name: &str| {
                        block
                            .get(name)
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                self.client
                                    .malformed(format!("tool_use block {i} has no `{name}`"))
                            })
                    };
                    calls.push(ToolCall {
                        id: field("id")?,
                        name: field("name")?,
                        raw_arguments: block
                            .get("input")
                            .map_or_else(String::new, Value::to_string),
                    });
                }
                _ => {}
            }
        }
        let finish = match body.get("stop_reason").and_then(Value::as_str) {
            Some("end_turn" | "stop_sequence") | None => Finish::Stop,
            Some("tool_use") => Finish::ToolCalls,
            Some("max_tokens") => Finish::Length,
            Some("refusal") => Finish::Refused,
            Some(other) => Finish::Other(other.into()),
        };
        let count = |key: &str| {
            body.pointer(&format!("/usage/{key}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        let cache_read = count("cache_read_input_tokens");
        Ok(ModelResponse {
            text: (!text.is_empty()).then_some(text),
            calls,
            finish,
            usage: TokenUsage {
                input_tokens: count("input_tokens")
                    + cache_read
                    + count("cache_creation_input_tokens"),
                output_tokens: count("output_tokens"),
                cache_read_tokens: cache_read,
            },
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(&self.config.model)
                .to_owned(),
            response_id: body.get("id").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// A call's arguments as the `input` object Anthropic requires; arguments that are not an
/// object (from another provider, before a fallback) are kept under `arguments`.
fn input_object(call: &ToolCall) -> Value {
    match call.arguments() {
        Ok(map) => Value::Object(map),
        Err(_) => json!({"arguments": call.raw_arguments}),
    }
}

impl Model for AnthropicModel {
    fn id(&self) -> ModelId {
        ModelId {
            provider: "anthropic".into(),
            model: self.config.model.clone(),
        }
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> ModelFuture<'a> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            headers.insert("x-api-key", self.config.api_key.header_value());
            headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
            let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
            let body = self
                .client
                .post(&url, headers, &self.request_body(request))
                .await?;
            self.parse(&body)
        })
    }
}
