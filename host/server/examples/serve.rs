//! `harness serve` in a few lines: a whitelist with one tool, the server on a loopback port,
//! and one call to it over the `/v1` API and one over MCP (a stateless 2026-07-28 request),
//! both through the gates and into the audit chain.
//!
//! Everything is built here (a tiny WebAssembly tool, the whitelist), so it runs anywhere:
//! `cargo run -p harness-server --example serve`.

use std::sync::Arc;
use std::time::Duration;

use harness_agent::calls::ToolGate;
use harness_agent::gates::Principal;
use harness_agent::state::StateStore;
use harness_sandbox::{Host, Sha256Digest};
use harness_server::McpServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The tool: `answer(bonus)` returns 42 + bonus.
const WIT: &str = "package example:answer;

world answer {
  export answer: func(bonus: s32) -> s32;
}";

const WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "answer") (param i32) (result i32)
    (i32.add (i32.const 42) (local.get 0))))"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let component = component()?;
    std::fs::write(dir.path().join("answer.wasm"), &component)?;
    let whitelist = format!(
        "[host]\ncache_dir = \"cache\"\ndata_dir = \"data\"\n\n\
         [tools.answer]\ncomponent = \"answer.wasm\"\nsha256 = \"{}\"\nrate = \"5/min\"\n",
        Sha256Digest::of(&component)
    );
    let path = dir.path().join("harness.toml");
    std::fs::write(&path, whitelist)?;

    // The whitelist's agent part and server part ([clients], [mcp]) in one pass.
    let (config, settings) = harness_server::settings::load(&path)?;
    let host = Host::load(config.policy().clone())?;
    let state = Arc::new(StateStore::for_config(&config)?);
    let gate = ToolGate::new(host, state.clone(), Arc::new(config));
    // No [clients]: the server serves the local user, on loopback only.
    let local = Principal {
        name: "ana".into(),
        roles: Default::default(),
    };
    let server = McpServer::new(gate, settings, local);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(harness_server::serve_listener(
        server,
        listener,
        shutdown.clone(),
        Duration::from_secs(5),
    ));

    let api = post(addr, "/v1/tools/answer/answer", &[], r#"{"bonus": 0}"#).await?;
    println!("POST /v1/tools/answer/answer\n  {api}");
    let mcp = post(
        addr,
        "/mcp",
        &[
            "Accept: application/json, text/event-stream",
            "MCP-Protocol-Version: 2026-07-28",
            "Mcp-Method: tools/call",
            "Mcp-Name: answer__answer",
        ],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"answer__answer","arguments":{"bonus":1},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"example","version":"1"}}}}"#,
    )
    .await?;
    println!("MCP tools/call answer__answer\n  {mcp}");

    shutdown.cancel();
    serving.await??;
    println!("audit chain: {:?}", state.verify_audit(None)?);
    Ok(())
}

/// POSTs JSON `body` to `path` on `addr` with `headers`, and returns the response's body.
async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[&str],
    body: &str,
) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(_, body)| body)
        .to_owned())
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
