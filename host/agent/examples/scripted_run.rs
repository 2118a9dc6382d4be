//! An agent run end to end, with a scripted model: the model asks for a tool call, the call
//! passes the gates and runs in the sandbox, the model answers, and every step is in the audit
//! hash chain.
//!
//! Everything is built here (a tiny WebAssembly tool, the whitelist, the script), so it runs
//! anywhere: `cargo run -p harness-agent --example scripted_run`.

use std::sync::Arc;

use harness_agent::config::Config;
use harness_agent::gates::Principal;
use harness_agent::models::scripted::ScriptedModel;
use harness_agent::run::{Agent, Event};
use harness_agent::state::StateStore;
use harness_sandbox::{Host, Sha256Digest};

/// The tool: `answer(bonus)` returns 42 + bonus.
const WIT: &str = "package example:answer;

world answer {
  export answer: func(bonus: s32) -> s32;
}";

const WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "answer") (param i32) (result i32)
    (i32.add (i32.const 42) (local.get 0))))"#;

/// What the model will say, one JSON line per turn.
const SCRIPT: &str = r#"{"calls": [{"name": "answer__answer", "arguments": {"bonus": 0}}]}
{"text": "The answer is 42."}
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let component = component()?;
    std::fs::write(dir.path().join("answer.wasm"), &component)?;
    std::fs::write(dir.path().join("script.jsonl"), SCRIPT)?;
    let whitelist = format!(
        "[host]\ncache_dir = \"cache\"\ndata_dir = \"data\"\n\n\
         [tools.answer]\ncomponent = \"answer.wasm\"\nsha256 = \"{}\"\nrate = \"5/min\"\n\n\
         [models.script]\nprovider = \"scripted\"\nscript = \"script.jsonl\"\n\n\
         [agents.helper]\nmodel = \"script\"\nsystem = \"You answer questions.\"\n",
        Sha256Digest::of(&component)
    );
    let path = dir.path().join("harness.toml");
    std::fs::write(&path, whitelist)?;

    let config = Arc::new(Config::load(&path)?);
    let host = Host::load(config.policy().clone())?;
    let state = Arc::new(StateStore::for_config(&config)?);
    let model = Arc::new(ScriptedModel::load(
        "script",
        &dir.path().join("script.jsonl"),
    )?);
    let agent = Agent::new(host, state.clone(), config, "helper", model)?;
    let principal = Principal {
        name: "ana".into(),
        roles: Default::default(),
    };
    // The agent owns what it needs, so a run can go on its own task.
    let report =
        tokio::spawn(async move { agent.run(&principal, "What is the answer?").await }).await??;
    for event in &report.events {
        if let Event::Call { call, result, .. } = event {
            println!("{} {} → {}", call.name, call.raw_arguments, result.content);
        }
    }
    println!("answer: {} ({:?})", report.answer, report.status);
    for entry in state.audit_of_run(&report.run_id)? {
        println!("  audit #{} {}", entry.seq, entry.kind);
    }
    let verified = state.verify_audit(None)?;
    println!("audit chain: {verified:?}");
    Ok(())
}

fn component() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut module = wat::parse_str(WAT)?;
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("answer.wit", WIT)?;
    let world = resolve.select_world(&[package], Some("answer"))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )?;
    Ok(wit_component::ComponentEncoder::default()
        .module(&module)?
        .encode()?)
}
