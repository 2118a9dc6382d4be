//! What a tool offers: its exported functions, their descriptions and their JSON Schemas,
//! derived from the component's own WIT.
//!
//! Every exported function (at the world level or inside an exported interface) becomes a
//! [`ToolFunction`]. A function whose parameter or result types a model cannot send or receive
//! is refused, naming the function and the type.

pub mod schema;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use wit_parser::{
    Function, FunctionKind, InterfaceId, Resolve, Type, TypeDefKind, WorldId, WorldItem, WorldKey,
};

/// Longest function name OpenAI and MCP clients accept.
pub const MAX_QUALIFIED_NAME: usize = 64;

/// One function an agent can call.
#[derive(Clone, Debug)]
pub struct ToolFunction {
    /// The name within its tool: `add`, or `ops.add` for a function of an exported interface `ops`.
    pub name: String,
    /// The name models see: `calc__add`, `calc__ops__add` (`[a-zA-Z0-9_-]{1,64}`).
    pub qualified_name: String,
    /// The function's doc comment.
    pub description: Option<String>,
    /// JSON Schema of the arguments object (one property per parameter).
    pub parameters_schema: Value,
    /// JSON Schema of a successful result.
    pub result_schema: Value,
    /// JSON Schema of the tool error, when the function returns `result<_, E>`.
    pub error_schema: Option<Value>,
    pub(crate) signature: Signature,
    pub(crate) export: ExportPath,
}

/// Where a function sits among the component's exports.
#[derive(Clone, Debug)]
pub(crate) struct ExportPath {
    /// The exported interface (`example:calc/ops@0.1.0`), or `None` at the world level.
    pub interface: Option<String>,
    /// The function's WIT name.
    pub function: String,
}

/// The WIT signature, kept for converting arguments and classifying results.
#[derive(Clone, Debug)]
pub(crate) struct Signature {
    pub resolve: Arc<Resolve>,
    pub params: Vec<(String, Type)>,
    pub result: ResultShape,
}

/// How a function's return value maps to an outcome.
#[derive(Clone, Debug)]
pub(crate) enum ResultShape {
    /// No return value: success is `null`.
    Nothing,
    /// Any value but a `result`: always success.
    Value,
    /// `result<T, E>`: `ok` is success, `err` a tool error.
    Fallible,
}

/// Why a component's exports cannot be offered to a model.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The component's WIT could not be decoded.
    #[error("cannot read the component's WIT: {0}")]
    Decode(String),
    /// A function uses a type JSON cannot carry.
    #[error(
        "function `{function}` uses a {ty}, which a model cannot send or receive; export a function with value types only (records, variants, lists, strings, numbers ...)"
    )]
    UnsupportedType { function: String, ty: String },
    /// The model-facing name would be too long.
    #[error(
        "function `{function}` would be offered as `{qualified}`, longer than {MAX_QUALIFIED_NAME} characters; shorten the tool or function name"
    )]
    NameTooLong { function: String, qualified: String },
    /// The component exports nothing a model could call.
    #[error("the component exports no functions, so there is nothing to call")]
    NoFunctions,
}

/// The decoded WIT of a component: its type graph and its world.
pub struct DecodedWorld {
    /// All packages and types the component mentions.
    pub resolve: Arc<Resolve>,
    /// The component's own world.
    pub world: WorldId,
}

/// Decodes the WIT world embedded in a component binary.
pub fn decode_world(wasm: &[u8]) -> Result<DecodedWorld, ContractError> {
    match wit_component::decode(wasm) {
        Ok(wit_parser::decoding::DecodedWasm::Component(resolve, world)) => Ok(DecodedWorld {
            resolve: Arc::new(resolve),
            world,
        }),
        Ok(_) => Err(ContractError::Decode(
            "this is a WIT package, not a component".into(),
        )),
        Err(e) => Err(ContractError::Decode(format!("{e:#}"))),
    }
}

/// Lists the callable functions of a component whose WIT is `decoded`, offered as tool `tool`.
pub fn discover(tool: &str, decoded: &DecodedWorld) -> Result<Vec<ToolFunction>, ContractError> {
    let resolve = &decoded.resolve;
    let mut functions = Vec::new();
    for (key, item) in &resolve.worlds[decoded.world].exports {
        match item {
            WorldItem::Function(func) => {
                let export = ExportPath {
                    interface: None,
                    function: func.name.clone(),
                };
                functions.push(describe(tool, &func.name, func, decoded, export)?);
            }
            WorldItem::Interface { id, .. } if is_toolchain_hook(resolve, key, *id) => {}
            WorldItem::Interface { id, .. } => {
                let iface_name = resolve.name_world_key(key);
                let short = match key {
                    WorldKey::Name(name) => name.clone(),
                    WorldKey::Interface(_) => resolve.interfaces[*id]
                        .name
                        .clone()
                        .unwrap_or_else(|| iface_name.clone()),
                };
                for func in resolve.interfaces[*id].functions.values() {
                    let name = format!("{short}.{}", func.name);
                    if !matches!(
                        func.kind,
                        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding
                    ) {
                        return Err(ContractError::UnsupportedType {
                            function: name,
                            ty: "resource method".into(),
                        });
                    }
                    let export = ExportPath {
                        interface: Some(iface_name.clone()),
                        function: func.name.clone(),
                    };
                    functions.push(describe(tool, &name, func, decoded, export)?);
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    if functions.is_empty() {
        return Err(ContractError::NoFunctions);
    }
    Ok(functions)
}

/// Whether an exported interface is a guest toolchain's own plumbing rather than tools: the
/// pre-initialization hook componentize-py leaves in every Python component (an interface
/// named `exports` holding only `init(app-name, symbols, stub-wasi)`). No caller may reach it.
fn is_toolchain_hook(resolve: &Resolve, key: &WorldKey, id: InterfaceId) -> bool {
    let functions = &resolve.interfaces[id].functions;
    matches!(key, WorldKey::Name(name) if name == "exports")
        && functions.len() == 1
        && functions.get("init").is_some_and(|init| {
            let params: Vec<&str> = init.params.iter().map(|p| p.name.as_str()).collect();
            params == ["app-name", "symbols", "stub-wasi"]
        })
}

fn describe(
    tool: &str,
    name: &str,
    func: &Function,
    decoded: &DecodedWorld,
    export: ExportPath,
) -> Result<ToolFunction, ContractError> {
    let resolve = &decoded.resolve;
    let unsupported = |e: schema::Unsupported| ContractError::UnsupportedType {
        function: name.to_owned(),
        ty: e.0,
    };

    let mut properties = Map::new();
    let mut required = Vec::new();
    for param in &func.params {
        properties.insert(
            param.name.clone(),
            schema::schema_of(resolve, &param.ty).map_err(unsupported)?,
        );
        if !schema::is_option(resolve, &param.ty) {
            required.push(Value::String(param.name.clone()));
        }
    }
    let parameters_schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });

    let (shape, result_schema, error_schema) = match &func.result {
        None => (ResultShape::Nothing, json!({ "type": "null" }), None),
        Some(ty) => match fallible_sides(resolve, ty) {
            Some((ok, err)) => {
                let side = |t: Option<Type>| {
                    t.map_or(Ok(json!({ "type": "null" })), |t| {
                        schema::schema_of(resolve, &t)
                    })
                };
                (
                    ResultShape::Fallible,
                    side(ok).map_err(unsupported)?,
                    Some(side(err).map_err(unsupported)?),
                )
            }
            None => (
                ResultShape::Value,
                schema::schema_of(resolve, ty).map_err(unsupported)?,
                None,
            ),
        },
    };

    let qualified_name = format!("{tool}__{}", name.replace('.', "__"));
    if qualified_name.len() > MAX_QUALIFIED_NAME {
        return Err(ContractError::NameTooLong {
            function: name.to_owned(),
            qualified: qualified_name,
        });
    }
    Ok(ToolFunction {
        name: name.to_owned(),
        qualified_name,
        description: func.docs.contents.as_ref().map(|d| d.trim().to_owned()),
        parameters_schema,
        result_schema,
        error_schema,
        signature: Signature {
            resolve: resolve.clone(),
            params: func.params.iter().map(|p| (p.name.clone(), p.ty)).collect(),
            result: shape,
        },
        export,
    })
}

/// The `ok` and `err` types when `ty` is (an alias of) a `result`.
fn fallible_sides(resolve: &Resolve, ty: &Type) -> Option<(Option<Type>, Option<Type>)> {
    match ty {
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Result(r) => Some((r.ok, r.err)),
            TypeDefKind::Type(inner) => fallible_sides(resolve, inner),
            _ => None,
        },
        _ => None,
    }
}
