//! OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`): OpenAI itself, and
//! the servers that speak its format (vLLM, Ollama, llama.cpp, LiteLLM, ...).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::client::JsonClient;
use super::{
    Finish, Message, Model, ModelError, ModelFuture, ModelId, ModelRequest, ModelResponse,
    TokenUsage, ToolCall, ToolChoice,
};
use harness_sandbox::policy::SecretValue;

/// How to reach an OpenAI-compatible server.
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The bearer token, if the server wants one (prints as `[redacted]`).
    pub api_key: Option<SecretValue>,
    /// How long one request may take.
    pub timeout: Duration,
}

/// A Chat Completions client.
#[derive(Debug)]
pub struct OpenAiModel {
    config: OpenAiConfig,
    client: JsonClient,
}

impl OpenAiModel {
    /// A client for `config`.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiModel, ModelError> {
        let client = JsonClient::new("openai", config.timeout)?;
        Ok(OpenAiModel { config, client })
    }

    /// The exact JSON body sent for `request` (the audit log and replay keep it).
    pub fn request_body(&self, request: &ModelRequest) -> Value {
        let mut messages = Vec::new();
        if !request.system.is_empty() {
            messages.push(json!({"role": "system", "content": request.system}));
        }
        for message in &request.messages {
            match message {
                Message::User { text } => messages.push(json!({"role": "user", "content": text})),
                Message::Assistant { text, calls } => {
                    let mut turn = json!({"role": "assistant", "content": text});
                    if !calls.is_empty() {
                        turn["tool_calls"] = calls
                            .iter()
                            .map(|c| {
                                json!({"id": c.id, "type": "function",
                                       "function": {"name": c.name, "arguments": c.raw_arguments}})
                            })
                            .collect();
                    }
                    messages.push(turn);
                }
                Message::ToolResults { results } => messages.extend(results.iter().map(
                    |r| json!({"role": "tool", "tool_call_id": r.call_id, "content": r.content}),
                )),
            }
        }
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "max_tokens": request.max_output_tokens,
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body["tool_choice"] = match &request.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            };
            body["parallel_tool_calls"] = json!(request.parallel_tool_calls);
        }
        body
    }

    fn parse(&self, body: &Value) -> Result<ModelResponse, ModelError> {
        let choice = body
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| self.client.malformed("no `choices[0]`"))?;
        let message = choice
            .get("message")
            .ok_or_else(|| self.client.malformed("no `choices[0].message`"))?;
        let calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .map(|calls| {
                calls
                    .iter()
                    .enumerate()
                    .map(|(i, call)| {
                        let function = call.get("function");
                        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
                        Ok(ToolCall {
                            id: text(call.get("id")).unwrap_or_else(|| format!("call_{i}")),
                            name: text(function.and_then(|f| f.get("name"))).ok_or_else(|| {
                                self.client
                                    .malformed(format!("tool call {i} has no function name"))
                            })?,
                            raw_arguments: text(function.and_then(|f| f.get("arguments")))
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<Vec<_>, ModelError>>()
            })
            .transpose()?
            .unwrap_or_default();
        let finish = match choice.get("finish_reason").and_then(Value::as_str) {
            Some("stop") | None => Finish::Stop,
            Some("tool_calls" | "function_call") => Finish::ToolCalls,
            Some("length") => Finish::Length,
            Some("content_filter") => Finish::Refused,
            Some(other) => Finish::Other(other.into()),
        };
        let count = |pointer: &str| body.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        Ok(ModelResponse {
            text: message
                .get("content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            calls,
            finish,
            usage: TokenUsage {
                input_tokens: count("/usage/prompt_tokens"),
                output_tokens: count("/usage/completion_tokens"),
                cache_read_tokens: count("/usage/prompt_tokens_details/cached_tokens"),
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

impl Model for OpenAiModel {
    fn id(&self) -> ModelId {
        ModelId {
            provider: "openai".into(),
            model: self.config.model.clone(),
        }
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> ModelFuture<'a> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            if let Some(key) = &self.config.api_key {
                // A valid header value stays valid behind "Bearer ".
                let mut value = HeaderValue::from_bytes(&[b"Bearer ", key.bytes()].concat())
                    .map_err(|_| {
                        ModelError::Config("the OpenAI API key is not a valid header value".into())
                    })?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            let url = format!(
                "{}/chat/completions",
                self.config.base_url.trim_end_matches('/')
            );
            let body = self
                .client
                .post(&url, headers, &self.request_body(request))
                .await?;
            self.parse(&body)
        })
    }
}
