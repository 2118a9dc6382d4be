//! The whitelist's tool functions as MCP tools: names, descriptions, schemas, and annotations
//! that are true because they are derived from the grants, not written by the tool's author.
//!
//! The rule for annotations, per tool (every function of a tool shares its grants):
//! - `readOnlyHint` is true only when the tool has no read-write directory, no key-value
//!   storage, no HTTP method other than GET or HEAD, and no sockets;
//! - `destructiveHint` is false only for such read-only tools;
//! - `openWorldHint` is true only when the tool has HTTP or socket grants;
//! - `title` is the tool's WIT world summary (the first line of its doc comment), or its name.

use std::sync::Arc;

use harness_sandbox::policy::{FsMode, Grants};
use harness_sandbox::{LoadedTool, ToolFunction};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

/// The MCP tool of `function` of `tool`. Its name is the function's model-facing name
/// (`tool__function`, `tool__interface__function`): valid for MCP and for model APIs, and unique
/// because tool names cannot contain `__`.
pub fn tool(tool: &LoadedTool, function: &ToolFunction) -> Tool {
    let description = function.description.clone().unwrap_or_else(|| {
        format!(
            "{}.{} (the tool's author gave no description)",
            tool.policy.name, function.name
        )
    });
    let input = object(&function.parameters_schema);
    let output = object(&output_schema(&function.result_schema));
    let title = tool
        .summary
        .clone()
        .unwrap_or_else(|| tool.policy.name.clone());
    let (read_only, open_world) = hints(&tool.policy.grants);
    let annotations = ToolAnnotations::from_raw(
        Some(title.clone()),
        Some(read_only),
        Some(!read_only),
        None,
        Some(open_world),
    );
    let mut mcp = Tool::new(
        function.qualified_name.clone(),
        description,
        Arc::new(input),
    );
    mcp.title = Some(title);
    mcp.output_schema = Some(Arc::new(output));
    mcp.annotations = Some(annotations);
    mcp
}

/// (read-only, open-world) for a tool with `grants`.
pub fn hints(grants: &Grants) -> (bool, bool) {
    let writes_files = grants.fs.iter().any(|g| g.mode == FsMode::ReadWrite);
    let writes_http = grants.http.iter().any(|g| {
        g.methods
            .iter()
            .any(|m| !matches!(m.as_str(), "GET" | "HEAD"))
    });
    let read_only =
        !writes_files && grants.kv.is_none() && !writes_http && grants.sockets.is_empty();
    let open_world = !grants.http.is_empty() || !grants.sockets.is_empty();
    (read_only, open_world)
}

/// The output schema: the result's own schema when it describes an object, else the result
/// wrapped as `{"result": …}` (MCP clients before 2026-07-28 accept only object schemas).
pub fn output_schema(result: &Value) -> Value {
    if is_object_schema(result) {
        result.clone()
    } else {
        json!({
            "type": "object",
            "properties": {"result": result},
            "required": ["result"],
            "additionalProperties": false,
        })
    }
}

/// The structured content of a result `value` that matches [`output_schema`].
pub fn structured(result_schema: &Value, value: Value) -> Value {
    if is_object_schema(result_schema) {
        value
    } else {
        json!({"result": value})
    }
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

fn object(schema: &Value) -> JsonObject {
    match schema {
        Value::Object(map) => map.clone(),
        _ => JsonObject::new(),
    }
}
