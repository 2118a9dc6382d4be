//! The model clients against loopback servers that speak each provider's wire format exactly:
//! tool definitions and choices going out, parallel tool calls (malformed arguments kept as
//! sent), tool results and usage coming back, and provider errors, 429 with `retry-after`,
//! timeouts, unreachable servers and unreadable answers.

use std::sync::Arc;
use std::time::Duration;

use harness_agent::models::anthropic::{AnthropicConfig, AnthropicModel};
use harness_agent::models::openai::{OpenAiConfig, OpenAiModel};
use harness_agent::models::retry::{Resilient, RetryPolicy};
use harness_agent::models::{
    Finish, Message, Model, ModelError, ModelRequest, TokenUsage, ToolChoice, ToolResult, ToolSpec,
};
use harness_e2e::http_server::{HttpServer, ReceivedRequest, response};
use harness_sandbox::policy::SecretValue;
use serde_json::{Value, json};

fn request() -> ModelRequest {
    ModelRequest {
        system: "You are a careful assistant.".into(),
        messages: vec![Message::User {
            text: "What is 6 times 7, and the weather in Paris?".into(),
        }],
        tools: vec![ToolSpec {
            name: "calc__apply".into(),
            description: "Apply `op` to `a` and `b`.".into(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}),
        }],
        tool_choice: ToolChoice::Auto,
        parallel_tool_calls: true,
        max_output_tokens: 512,
    }
}

fn body(request: &ReceivedRequest) -> Value {
    serde_json::from_slice(&request.body).expect("the client sends JSON")
}

fn json_response(value: Value) -> Vec<u8> {
    response(
        200,
        &[("content-type", "application/json")],
        value.to_string().as_bytes(),
    )
}

fn openai(server: &HttpServer, timeout: Duration) -> OpenAiModel {
    OpenAiModel::new(OpenAiConfig {
        base_url: format!("http://{}/v1", server.addr()),
        model: "gpt-test".into(),
        api_key: Some(SecretValue::new("sk-test-key").unwrap()),
        timeout,
    })
    .unwrap()
}

fn anthropic(server: &HttpServer) -> AnthropicModel {
    AnthropicModel::new(AnthropicConfig {
        base_url: format!("http://{}", server.addr()),
        model: "claude-test".into(),
        api_key: SecretValue::new("ant-test-key").unwrap(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn openai_tool_calls_round_trip_in_the_chat_completions_format() {
    let server = HttpServer::start(|_| {
        json_response(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test-2026",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "calc__apply", "arguments": "{\"a\": 6}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "weather__current", "arguments": "{\"city\": \"Par"}}
                ]}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                      "prompt_tokens_details": {"cached_tokens": 100}}
        }))
    });
    let model = openai(&server, Duration::from_secs(5));
    let mut request = request();
    let answer = model.complete(&request).await.unwrap();

    assert_eq!(answer.finish, Finish::ToolCalls);
    assert_eq!(answer.text, None);
    assert_eq!(answer.calls.len(), 2, "parallel calls");
    assert_eq!(answer.calls[0].arguments().unwrap()["a"], 6);
    assert_eq!(
        answer.calls[1].raw_arguments, "{\"city\": \"Par",
        "kept exactly as sent"
    );
    assert!(answer.calls[1].arguments().is_err());
    assert_eq!(
        answer.usage,
        TokenUsage {
            input_tokens: 120,
            output_tokens: 30,
            cache_read_tokens: 100
        }
    );
    assert_eq!(
        (answer.model.as_str(), answer.response_id.as_deref()),
        ("gpt-test-2026", Some("chatcmpl-1"))
    );

    let sent = &server.requests()[0];
    assert_eq!(sent.request_line(), "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test-key"));
    let sent = body(sent);
    assert_eq!(
        sent,
        model.request_body(&request),
        "the body the client reports is the body sent"
    );
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are a careful assistant."})
    );
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], "calc__apply");
    assert_eq!(
        (
            sent["tool_choice"].clone(),
            sent["parallel_tool_calls"].clone()
        ),
        (json!("auto"), json!(true))
    );

    // The next turn carries the calls and one `tool` message per result.
    request.messages.push(Message::Assistant {
        text: None,
        calls: answer.calls.clone(),
    });
    request.messages.push(Message::ToolResults {
        results: vec![
            ToolResult {
                call_id: "call_a".into(),
                content: "42".into(),
                is_error: false,
            },
            ToolResult {
                call_id: "call_b".into(),
                content: "error: the arguments are not valid JSON".into(),
                is_error: true,
            },
        ],
    });
    request.tool_choice = ToolChoice::Tool("calc__apply".into());
    let sent = model.request_body(&request);
    assert_eq!(
        sent["messages"][2]["tool_calls"][1]["function"]["arguments"],
        "{\"city\": \"Par"
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_a", "content": "42"})
    );
    assert_eq!(sent["messages"][4]["tool_call_id"], "call_b");
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "calc__apply"}})
    );
}

#[tokio::test]
async fn anthropic_tool_use_round_trips_in_the_messages_format() {
    let server = HttpServer::start(|_| {
        json_response(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test-1",
            "content": [
                {"type": "text", "text": "Let me compute that."},
                {"type": "tool_use", "id": "toolu_1", "name": "calc__apply", "input": {"a": 6}},
                {"type": "tool_use", "id": "toolu_2", "name": "calc__apply", "input": {"a": 7}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 20, "output_tokens": 15, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}
        }))
    });
    let model = anthropic(&server);
    let mut request = request();
    request.parallel_tool_calls = false;
    let answer = model.complete(&request).await.unwrap();
    assert_eq!(answer.text.as_deref(), Some("Let me compute that."));
    assert_eq!(answer.finish, Finish::ToolCalls);
    assert_eq!(answer.calls[1].id, "toolu_2");
    assert_eq!(answer.calls[1].arguments().unwrap()["a"], 7);
    assert_eq!(
        answer.usage,
        TokenUsage {
            input_tokens: 125,
            output_tokens: 15,
            cache_read_tokens: 100
        }
    );

    let sent = &server.requests()[0];
    assert_eq!(sent.request_line(), "POST /v1/messages HTTP/1.1");
    assert_eq!(sent.header("x-api-key"), Some("ant-test-key"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    let sent = body(sent);
    assert_eq!(sent["system"], "You are a careful assistant.");
    assert_eq!(sent["tools"][0]["input_schema"]["required"], json!(["a"]));
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );

    // Results go back as tool_result blocks in one user turn, merged with the user's next words.
    request.messages.push(Message::Assistant {
        text: answer.text.clone(),
        calls: answer.calls.clone(),
    });
    request.messages.push(Message::ToolResults {
        results: vec![
            ToolResult {
                call_id: "toolu_1".into(),
                content: "6".into(),
                is_error: false,
            },
            ToolResult {
                call_id: "toolu_2".into(),
                content: "denied by role".into(),
                is_error: true,
            },
        ],
    });
    request.messages.push(Message::User {
        text: "Thanks.".into(),
    });
    let sent = model.request_body(&request);
    let turns = sent["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(
        turns[1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_1", "name": "calc__apply", "input": {"a": 6}})
    );
    assert_eq!(turns[2]["role"], "user");
    assert_eq!(
        turns[2]["content"][1],
        json!({"type": "tool_result", "tool_use_id": "toolu_2", "content": "denied by role", "is_error": true})
    );
    assert_eq!(
        turns[2]["content"][2],
        json!({"type": "text", "text": "Thanks."})
    );
}

#[tokio::test]
async fn provider_errors_are_named_and_classified() {
    let server = HttpServer::start(|request| {
        let path = request
            .request_line()
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        match path.as_str() {
            "/limited/chat/completions" => response(
                429,
                &[("retry-after", "7")],
                br#"{"error": {"message": "Rate limit reached for gpt-test", "type": "requests", "code": "rate_limit_exceeded"}}"#,
            ),
            "/bad/chat/completions" => response(
                400,
                &[],
                br#"{"error": {"message": "Invalid schema for function 'calc__apply'", "type": "invalid_request_error"}}"#,
            ),
            "/garbled/chat/completions" => response(200, &[], b"<html>hello</html>"),
            "/empty/chat/completions" => json_response(json!({"id": "x", "choices": []})),
            "/v1/messages" => response(
                529,
                &[],
                br#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
            ),
            _ => response(404, &[], b"not here"),
        }
    });
    let at = |path: &str| {
        OpenAiModel::new(OpenAiConfig {
            base_url: format!("http://{}/{path}", server.addr()),
            model: "gpt-test".into(),
            api_key: None,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    };
    let error = at("limited").complete(&request()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "openai answered 429: Rate limit reached for gpt-test"
    );
    assert!(error.is_transient());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));

    let error = at("bad").complete(&request()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "openai answered 400: Invalid schema for function 'calc__apply'"
    );
    assert!(!error.is_transient());

    let error = at("garbled").complete(&request()).await.unwrap_err();
    assert!(matches!(error, ModelError::Malformed { .. }), "{error}");
    assert!(
        error.to_string().contains("the body is not JSON"),
        "{error}"
    );
    let error = at("empty").complete(&request()).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "openai sent an answer that cannot be read: no `choices[0]`"
    );

    let error = anthropic(&server).complete(&request()).await.unwrap_err();
    assert_eq!(error.to_string(), "anthropic answered 529: Overloaded");
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_slow_provider_times_out_and_a_missing_one_is_unreachable() {
    let slow = HttpServer::start(|_| {
        std::thread::sleep(Duration::from_secs(2));
        json_response(json!({}))
    });
    let error = openai(&slow, Duration::from_millis(200))
        .complete(&request())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "openai did not answer within 200ms");
    assert!(error.is_transient());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = OpenAiModel::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "gpt-test".into(),
        api_key: None,
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let error = gone.complete(&request()).await.unwrap_err();
    assert!(matches!(error, ModelError::Unreachable { .. }), "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "cannot reach openai at http://127.0.0.1:{port}/v1/chat/completions"
        )),
        "{error}"
    );
}

#[tokio::test]
async fn a_rate_limited_request_is_retried_after_the_wait_the_provider_asked_for() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let server = HttpServer::start(move |_| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            response(
                429,
                &[("retry-after-ms", "150")],
                br#"{"error": {"message": "slow down"}}"#,
            )
        } else {
            json_response(
                json!({"id": "ok", "model": "gpt-test", "choices": [{"finish_reason": "stop",
                "message": {"role": "assistant", "content": "42"}}]}),
            )
        }
    });
    let model = Resilient::new(
        Arc::new(openai(&server, Duration::from_secs(5))),
        vec![],
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(2),
        },
    );
    let started = std::time::Instant::now();
    let answer = model.complete(&request()).await.unwrap();
    assert_eq!(answer.text.as_deref(), Some("42"));
    assert_eq!(server.requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited {:?}",
        started.elapsed()
    );
}
