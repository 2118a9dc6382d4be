//! Each model call and tool call as a structured event on the `harness::genai` target, with
//! the OpenTelemetry GenAI attribute names, so a subscriber can export them as spans or logs.

use harness_sandbox::CallReport;

use crate::models::{ModelId, ModelResponse};

/// A model call of run `run_id` (a `chat` operation).
pub(super) fn model_call(
    run_id: &str,
    prompt_version: &str,
    id: &ModelId,
    response: &ModelResponse,
    latency_ms: f64,
) {
    tracing::info!(
        target: "harness::genai",
        latency_ms,
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = %id.provider,
        "gen_ai.request.model" = %id.model,
        "gen_ai.response.model" = %response.model,
        "gen_ai.usage.input_tokens" = response.usage.input_tokens,
        "gen_ai.usage.output_tokens" = response.usage.output_tokens,
        "gen_ai.conversation.id" = %run_id,
        "prompt.version" = %prompt_version,
        "model call"
    );
}

/// A tool call of run `run_id` that ran in the sandbox (an `execute_tool` operation).
pub(super) fn tool_call(run_id: &str, call_id: &str, function: &str, report: &CallReport) {
    tracing::info!(
        target: "harness::genai",
        fuel = report.usage.fuel,
        "gen_ai.operation.name" = "execute_tool",
        "gen_ai.tool.name" = %function,
        "gen_ai.tool.call.id" = %call_id,
        "gen_ai.conversation.id" = %run_id,
        outcome = report.outcome.kind(),
        latency_ms = report.usage.wall.as_secs_f64() * 1000.0,
        "tool call"
    );
}
