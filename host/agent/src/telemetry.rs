//! Traces, named and attributed per the OpenTelemetry GenAI conventions, as `tracing` spans on
//! the `harness::genai` target: one per run (`invoke_agent {agent}`), per model call
//! (`chat {model}`) and per tool call in the sandbox (`execute_tool {tool}`). With no subscriber
//! interested they cost a check; the `harness` binary exports them over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Message content is attached only when
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is `true`, and then as the model sees
//! it (personal data masked).

use std::sync::OnceLock;

use harness_sandbox::{CallReport, Outcome};
use tracing::Span;
use tracing::field::Empty;

use crate::models::{ModelId, ModelResponse};

/// Whether message content goes into spans (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
pub fn capture_content() -> bool {
    static CAPTURE: OnceLock<bool> = OnceLock::new();
    *CAPTURE.get_or_init(|| {
        std::env::var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    })
}

/// The span of a run of `agent` (or of the rest of a resumed one).
pub(crate) fn agent_span(agent: &str, run_id: &str, model: &ModelId, prompt_version: &str) -> Span {
    tracing::info_span!(
        target: "harness::genai",
        "invoke_agent",
        "otel.name" = %format_args!("invoke_agent {agent}"),
        "otel.kind" = "internal",
        "otel.status_code" = Empty,
        "gen_ai.operation.name" = "invoke_agent",
        "gen_ai.agent.name" = %agent,
        "gen_ai.conversation.id" = %run_id,
        "gen_ai.provider.name" = %model.provider,
        "gen_ai.request.model" = %model.model,
        "harness.prompt.version" = %prompt_version,
        "harness.run.status" = Empty,
    )
}

/// Records how the run of `span` ended (or paused).
pub(crate) fn run_ended(span: &Span, status: &str, failed: bool) {
    span.record("harness.run.status", status);
    if failed {
        span.record("otel.status_code", "error");
    }
}

/// The span of one call to `model` in run `run_id`.
pub(crate) fn chat_span(run_id: &str, model: &ModelId) -> Span {
    tracing::info_span!(
        target: "harness::genai",
        "chat",
        "otel.name" = %format_args!("chat {}", model.model),
        "otel.kind" = "client",
        "otel.status_code" = Empty,
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = %model.provider,
        "gen_ai.request.model" = %model.model,
        "gen_ai.conversation.id" = %run_id,
        "gen_ai.response.model" = Empty,
        "gen_ai.response.id" = Empty,
        "gen_ai.response.finish_reasons" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "gen_ai.input.messages" = Empty,
        "gen_ai.output.messages" = Empty,
        "error.type" = Empty,
    )
}

/// Records the model's answer on its span; `content` (the messages sent and the answer, as
/// JSON, masked) when [`capture_content`] allows it.
pub(crate) fn model_responded(
    span: &Span,
    response: &ModelResponse,
    content: Option<(String, String)>,
) {
    span.record("gen_ai.response.model", response.model.as_str());
    if let Some(id) = &response.response_id {
        span.record("gen_ai.response.id", id.as_str());
    }
    let finish = serde_json::to_string(&[&response.finish]).unwrap_or_default();
    span.record("gen_ai.response.finish_reasons", finish.as_str());
    span.record("gen_ai.usage.input_tokens", response.usage.input_tokens);
    span.record("gen_ai.usage.output_tokens", response.usage.output_tokens);
    if let Some((input, output)) = content {
        span.record("gen_ai.input.messages", input.as_str());
        span.record("gen_ai.output.messages", output.as_str());
    }
}

/// Records that no model answered.
pub(crate) fn model_failed(span: &Span, error: &str) {
    span.record("otel.status_code", "error");
    span.record("error.type", error);
}

/// The span of one call of `function` (`tool.function`) in the sandbox, for run `run_id`.
pub(crate) fn tool_span(function: &str, run_id: &str) -> Span {
    tracing::info_span!(
        target: "harness::genai",
        "execute_tool",
        "otel.name" = %format_args!("execute_tool {function}"),
        "otel.kind" = "internal",
        "otel.status_code" = Empty,
        "gen_ai.operation.name" = "execute_tool",
        "gen_ai.tool.name" = %function,
        "gen_ai.tool.type" = "function",
        "gen_ai.conversation.id" = %run_id,
        "harness.outcome" = Empty,
        "harness.fuel" = Empty,
        "error.type" = Empty,
    )
}

/// Records what a call came to on its span.
pub(crate) fn tool_ran(span: &Span, report: &CallReport) {
    let outcome = report.outcome.kind();
    span.record("harness.outcome", outcome);
    span.record("harness.fuel", report.usage.fuel);
    if !matches!(report.outcome, Outcome::Ok { .. }) {
        span.record("otel.status_code", "error");
        span.record("error.type", outcome);
    }
}
