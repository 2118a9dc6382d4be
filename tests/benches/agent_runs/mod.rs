//! The agent run the run benches share: one scripted model turn asking for one tool call (the
//! adversarial fixture's `add`), the call through the gates and the sandbox, and a second turn
//! answering.

use std::path::Path;
use std::sync::Arc;

use harness_agent::config::Config;
use harness_e2e::{PolicyFile, hostile};

const SCRIPT: &str = r#"{"calls": [{"name": "hostile__add", "arguments": {"a": 20, "b": 22}}], "usage": {"input_tokens": 50, "output_tokens": 10}}
{"text": "42", "usage": {"input_tokens": 60, "output_tokens": 2}}
"#;

/// The whitelist with that tool and agent `bench`, written in `dir` and loaded.
pub fn whitelist(dir: &Path) -> Arc<Config> {
    let path = PolicyFile::new(&dir.join("cache"))
        .data_dir(&dir.join("data"))
        .tool("hostile", &hostile(), "")
        .scripted_agent(dir, "bench", SCRIPT, "")
        .write(dir);
    Arc::new(Config::load(&path).unwrap())
}

/// One run of `bench` through `POST /v1/runs` at `url`, checked to have answered.
pub async fn post(client: &reqwest::Client, url: &str) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(r#"{"agent": "bench", "input": "What is 20 + 22?"}"#)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let text = response.text().await.unwrap();
    assert!(text.contains("\"status\":\"answered\""), "{text}");
}
