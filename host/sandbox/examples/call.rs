//! Loads a one-tool whitelist and calls the tool through the sandbox.
//!
//! The tool is a tiny component built here from WebAssembly text, so the example needs nothing
//! but this crate: `cargo run -p harness-sandbox --example call`.

use harness_sandbox::{CallContext, Host, Outcome, Policy, Sha256Digest};

/// The tool's contract: one function, documented (the description a model would see).
const WIT: &str = "package example:answer;

world answer {
  /// The answer to everything, plus `bonus`.
  export answer: func(bonus: s32) -> s32;
}";

/// Its implementation, in WebAssembly text.
const WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "answer") (param i32) (result i32)
    (i32.add (i32.const 42) (local.get 0))))"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let component = component()?;
    std::fs::write(dir.path().join("answer.wasm"), &component)?;
    // The whitelist pins the component by digest; any other file would be refused.
    let whitelist = format!(
        "[host]\ncache_dir = \"cache\"\ndata_dir = \"data\"\n\n\
         [tools.answer]\ncomponent = \"answer.wasm\"\nsha256 = \"{}\"\nfuel = 1_000_000\n",
        Sha256Digest::of(&component)
    );
    let path = dir.path().join("harness.toml");
    std::fs::write(&path, whitelist)?;

    let host = Host::load(Policy::load(&path)?)?;
    for tool in host.tools() {
        for function in &tool.functions {
            println!(
                "{}: {}\n  parameters: {}",
                function.qualified_name,
                function
                    .description
                    .as_deref()
                    .unwrap_or("(no description)"),
                function.parameters_schema
            );
        }
    }
    let caller = CallContext::new("example", "run-1");
    let report = host
        .call("answer.answer", r#"{"bonus": 0}"#, &caller)
        .await?;
    match report.outcome {
        Outcome::Ok { value } => println!("answer.answer → {value} ({} fuel)", report.usage.fuel),
        other => println!("answer.answer ended as {}", other.kind()),
    }
    // Arguments are checked against the WIT signature before anything runs.
    let refused = host
        .call("answer.answer", r#"{"bonus": "many"}"#, &caller)
        .await;
    println!(
        "with a string: {}",
        refused.err().map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(())
}

/// The component: the core module with the world's WIT embedded, wrapped by wit-component.
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
