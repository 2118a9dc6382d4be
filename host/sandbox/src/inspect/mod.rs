//! `harness audit COMPONENT`: what a security reviewer needs to decide whether a tool may run —
//! its WIT world, its imports grouped by capability, its functions with their schemas, its digest.
//! Reads the file only; nothing is compiled or run.

pub mod review;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capabilities::Capability;
use crate::contract::{self, ContractError, ToolFunction};
use crate::digest::Sha256Digest;
use crate::registry::{self, NotAComponent};

/// The review of one component.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// SHA-256 of the file: what a whitelist entry pins.
    pub sha256: Sha256Digest,
    /// The component's world, as WIT text.
    pub wit: String,
    /// Imported interfaces, grouped by capability.
    pub imports: BTreeMap<Capability, Vec<String>>,
    /// Imports the host would refuse to link.
    pub refused_imports: Vec<String>,
    /// Callable functions with descriptions and schemas, or why they cannot be offered.
    pub functions: Functions,
}

/// The component's functions as a model would be offered them; in JSON `{"offered": [...]}` or
/// `{"refused": "why"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Functions {
    /// Every export can be offered.
    Offered(Vec<FunctionSummary>),
    /// The host would refuse to load the component, for this reason.
    Refused(String),
}

/// One function as a reviewer (and a model) sees it.
#[derive(Debug, Serialize)]
pub struct FunctionSummary {
    /// The name within the tool.
    pub name: String,
    /// The doc comment.
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
    /// JSON Schema of a successful result.
    pub result: serde_json::Value,
    /// JSON Schema of the tool error, if the function can fail.
    pub error: Option<serde_json::Value>,
}

impl From<&ToolFunction> for FunctionSummary {
    fn from(f: &ToolFunction) -> Self {
        Self {
            name: f.name.clone(),
            description: f.description.clone(),
            parameters: f.parameters_schema.clone(),
            result: f.result_schema.clone(),
            error: f.error_schema.clone(),
        }
    }
}

/// Why a file cannot be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Not a component.
    #[error("{0}")]
    NotAComponent(NotAComponent),
    /// Its WIT could not be read.
    #[error(transparent)]
    Contract(#[from] ContractError),
}

/// Inspects component `bytes`.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    registry::sniff(bytes).map_err(InspectError::NotAComponent)?;
    let decoded = contract::decode_world(bytes)?;
    let classified = registry::imports(&decoded);
    let refused_imports = crate::capabilities::unlinked_imports(&classified);
    let mut imports: BTreeMap<Capability, Vec<String>> = BTreeMap::new();
    for (name, capability) in classified {
        imports.entry(capability).or_default().push(name);
    }
    let functions = match contract::discover("tool", &decoded) {
        Ok(fs) => Functions::Offered(fs.iter().map(FunctionSummary::from).collect()),
        Err(e) => Functions::Refused(e.to_string()),
    };
    Ok(Inspection {
        sha256: Sha256Digest::of(bytes),
        wit: world_wit(&decoded)?,
        imports,
        refused_imports,
        functions,
    })
}

fn world_wit(decoded: &contract::DecodedWorld) -> Result<String, ContractError> {
    let resolve = &decoded.resolve;
    let main = resolve.worlds[decoded.world]
        .package
        .ok_or_else(|| ContractError::Decode("the world has no package".into()))?;
    let mut printer = wit_component::WitPrinter::default();
    printer
        .print(resolve, main, &[])
        .map_err(|e| ContractError::Decode(format!("{e:#}")))?;
    Ok(printer.output.to_string())
}
