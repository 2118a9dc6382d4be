//! `harness check` and `harness tools`.

use harness_sandbox::Host;
use harness_sandbox::signing::Verdict;

use crate::exit::Exit;
use serde_json::json;

/// Prints each tool with its digest, limits and functions.
pub fn check(host: &Host) -> Exit {
    for tool in host.tools() {
        let limits = &tool.policy.limits;
        let signed = match &tool.signature {
            Verdict::Signed { key, .. } => format!(", signed by {key}"),
            _ => String::new(),
        };
        println!(
            "{}  sha256:{}  fuel {}, memory {}, timeout {}, output {}{signed}",
            tool.policy.name,
            tool.digest,
            limits.fuel,
            limits.memory,
            humantime::format_duration(limits.timeout),
            limits.max_output
        );
        for f in &tool.functions {
            println!(
                "  {}.{}  {}",
                tool.policy.name,
                f.name,
                first_line(f.description.as_deref())
            );
        }
    }
    println!("ok: {} tool(s) loaded", host.tools().count());
    Exit::Success
}

/// Prints tools, functions, descriptions and schemas.
pub fn list(host: &Host, as_json: bool) -> Exit {
    if as_json {
        let tools: Vec<_> = host
            .tools()
            .map(|tool| {
                json!({
                    "name": tool.policy.name,
                    "sha256": tool.digest,
                    "source": tool.policy.registry.as_ref().map(ToString::to_string),
                    "signature": tool.signature,
                    "functions": tool.functions.iter().map(|f| json!({
                        "name": f.name,
                        "qualified_name": f.qualified_name,
                        "description": f.description,
                        "parameters": f.parameters_schema,
                        "result": f.result_schema,
                        "error": f.error_schema,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "tools": tools }))
                .expect("JSON values serialize")
        );
        return Exit::Success;
    }
    for tool in host.tools() {
        println!("{}", tool.policy.name);
        for f in &tool.functions {
            println!(
                "  {}.{}  (model name: {})",
                tool.policy.name, f.name, f.qualified_name
            );
            if let Some(d) = &f.description {
                for line in d.lines() {
                    println!("      {line}");
                }
            }
            println!("      parameters: {}", f.parameters_schema);
            println!("      result:     {}", f.result_schema);
            if let Some(e) = &f.error_schema {
                println!("      error:      {e}");
            }
        }
    }
    Exit::Success
}

fn first_line(text: Option<&str>) -> &str {
    text.and_then(|t| t.lines().next()).unwrap_or("")
}
