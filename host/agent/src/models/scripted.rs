//! A model that replays a script of responses, one per call, in order: for tests, the demo, and
//! golden datasets. A script is JSON Lines, one step per line:
//!
//! ```json
//! {"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}]}
//! {"calls": [{"name": "calc__apply", "arguments": "{\"op\": \"mul\", "}]}
//! {"error": {"status": 429, "message": "slow down", "retry_after_ms": 50}}
//! {"text": "6 × 7 = 42", "usage": {"input_tokens": 120, "output_tokens": 9}}
//! ```
//!
//! `arguments` given as a string are sent exactly (malformed JSON included); `usage` defaults to
//! an estimate of four bytes per token, so budgets see realistic numbers.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{
    Finish, Model, ModelError, ModelFuture, ModelId, ModelRequest, ModelResponse, TokenUsage,
    ToolCall,
};

/// Bytes per token in the usage estimate.
const BYTES_PER_TOKEN: usize = 4;

/// One scripted answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The answer's text.
    #[serde(default)]
    pub text: Option<String>,
    /// Tool calls to make.
    #[serde(default)]
    pub calls: Vec<ScriptedCall>,
    /// Tokens to report (estimated when absent).
    #[serde(default)]
    pub usage: Option<ScriptedUsage>,
    /// Why it stopped (default: `tool_calls` with calls, `stop` without).
    #[serde(default)]
    pub finish: Option<Finish>,
    /// Fail this call instead of answering.
    #[serde(default)]
    pub error: Option<ScriptedError>,
}

/// A scripted tool call.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    /// The tool name the model uses.
    pub name: String,
    /// An object, or a string sent as the raw arguments text.
    #[serde(default)]
    pub arguments: Value,
}

/// Scripted token counts.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// A scripted provider error.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedError {
    /// The HTTP status it stands for.
    pub status: u16,
    /// The provider's message.
    pub message: String,
    /// The wait the provider asks for.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

/// Replays [`Step`]s in order; fails plainly once they run out.
#[derive(Debug)]
pub struct ScriptedModel {
    name: String,
    steps: Vec<Step>,
    next: Mutex<usize>,
    seen: Mutex<Vec<ModelRequest>>,
}

impl ScriptedModel {
    /// A model named `name` replaying `steps`.
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> ScriptedModel {
        ScriptedModel {
            name: name.into(),
            steps,
            next: Mutex::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// A model named `name` replaying the JSON Lines script at `path`; errors name the file
    /// and line.
    pub fn load(name: impl Into<String>, path: &Path) -> Result<ScriptedModel, ModelError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Config(format!("reading script {}: {e}", path.display())))?;
        Ok(ScriptedModel::new(
            name,
            parse_steps(&text, &path.display().to_string())?,
        ))
    }

    /// The same script, with its first `used` steps already replayed (a run resumed after a
    /// pause continues where it stopped).
    pub fn starting_at(self, used: usize) -> ScriptedModel {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = used;
        self
    }

    /// The requests it was sent, in order: what the model saw.
    pub fn requests(&self) -> Vec<ModelRequest> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many steps were replayed so far.
    pub fn used(&self) -> usize {
        *self.next.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parses JSON Lines `text` (from `origin`, for messages) into steps; blank lines are skipped.
pub fn parse_steps(text: &str, origin: &str) -> Result<Vec<Step>, ModelError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| ModelError::Config(format!("{origin}, line {}: {e}", i + 1)))
        })
        .collect()
}

impl Model for ScriptedModel {
    fn id(&self) -> ModelId {
        ModelId {
            provider: "scripted".into(),
            model: self.name.clone(),
        }
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> ModelFuture<'a> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(request.clone());
            let index = {
                let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
                let index = *next;
                *next += 1;
                index
            };
            let step = self.steps.get(index).ok_or_else(|| {
                ModelError::Config(format!(
                    "script `{}` has {} responses and call {} asked for another",
                    self.name,
                    self.steps.len(),
                    index + 1
                ))
            })?;
            if let Some(error) = &step.error {
                return Err(ModelError::Status {
                    provider: "scripted".into(),
                    status: error.status,
                    message: error.message.clone(),
                    retry_after: error.retry_after_ms.map(Duration::from_millis),
                });
            }
            let calls: Vec<ToolCall> = step
                .calls
                .iter()
                .enumerate()
                .map(|(i, call)| ToolCall {
                    id: format!("call_{}_{i}", index + 1),
                    name: call.name.clone(),
                    raw_arguments: match &call.arguments {
                        Value::String(raw) => raw.clone(),
                        Value::Null => "{}".into(),
                        other => other.to_string(),
                    },
                })
                .collect();
            let usage = step.usage.map_or_else(
                || estimate(request, step.text.as_deref(), &calls),
                |u| TokenUsage {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens,
                    cache_read_tokens: 0,
                },
            );
            let finish = step.finish.clone().unwrap_or(if calls.is_empty() {
                Finish::Stop
            } else {
                Finish::ToolCalls
            });
            Ok(ModelResponse {
                text: step.text.clone(),
                calls,
                finish,
                usage,
                model: self.name.clone(),
                response_id: Some(format!("scripted-{}", index + 1)),
            })
        })
    }
}

/// Four bytes per token of the request as sent and of the answer.
fn estimate(request: &ModelRequest, text: Option<&str>, calls: &[ToolCall]) -> TokenUsage {
    let input = serde_json::to_string(request).map_or(0, |s| s.len());
    let output = text.map_or(0, str::len)
        + calls
            .iter()
            .map(|c| c.name.len() + c.raw_arguments.len())
            .sum::<usize>();
    TokenUsage {
        input_tokens: input.div_ceil(BYTES_PER_TOKEN) as u64,
        output_tokens: output.div_ceil(BYTES_PER_TOKEN) as u64,
        cache_read_tokens: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn steps_replay_in_order_then_run_out() {
        let steps = parse_steps(
            "{\"calls\": [{\"name\": \"calc__apply\", \"arguments\": {\"a\": 1}}, {\"name\": \"kb__search\", \"arguments\": \"{oops\"}]}\n\n\
             {\"error\": {\"status\": 429, \"message\": \"slow down\", \"retry_after_ms\": 5}}\n\
             {\"text\": \"done\", \"usage\": {\"input_tokens\": 7, \"output_tokens\": 2}}\n",
            "test",
        )
        .unwrap();
        let model = ScriptedModel::new("demo", steps);
        let request = ModelRequest::default();

        let first = model.complete(&request).await.unwrap();
        assert_eq!(first.finish, Finish::ToolCalls);
        assert_eq!(first.calls[0].raw_arguments, r#"{"a":1}"#);
        assert_eq!(first.calls[1].raw_arguments, "{oops");
        assert_eq!(first.calls[1].id, "call_1_1");
        assert!(first.usage.input_tokens > 0 && first.usage.output_tokens > 0);

        let error = model.complete(&request).await.unwrap_err();
        assert!(error.is_transient());
        assert_eq!(error.retry_after(), Some(Duration::from_millis(5)));

        let last = model.complete(&request).await.unwrap();
        assert_eq!(
            (last.text.as_deref(), last.usage.total()),
            (Some("done"), 9)
        );
        let out = model.complete(&request).await.unwrap_err();
        assert_eq!(
            out.to_string(),
            "script `demo` has 3 responses and call 4 asked for another"
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let error = parse_steps("{\"text\": \"ok\"}\n{\"txet\": 1}\n", "golden.jsonl").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("golden.jsonl, line 2: unknown field `txet`"),
            "{error}"
        );
    }
}
