//! Harness's sandbox: runs WebAssembly tool components for AI agents behind one
//! capability-checked, metered call boundary.
//!
//! The path of a call, module by module:
//! [`policy`] (the whitelist) → `registry` (digest check, compile cache, pre-instantiation)
//! → `contract` (functions and JSON Schemas from WIT) → `convert` (JSON ⇄ WIT values)
//! → `capabilities` (what is linked, each over its view of the call's `store` data)
//! → `boundary` (fresh store, fuel, deadline, memory cap, typed outcome) → `record` (one
//! structured record per call). [`Host`] ties them together; [`inspect`] reports on a component
//! for security review.
//!
//! ```no_run
//! use harness_sandbox::{CallContext, Host, Outcome, Policy};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::load(Policy::load("harness.toml")?)?;
//! let report = host
//!     .call("calc.apply", r#"{"op": "mul", "a": 6, "b": 7}"#, &CallContext::new("alice", "run-1"))
//!     .await?;
//! match report.outcome {
//!     Outcome::Ok { value } => println!("{value}"),
//!     Outcome::ToolError { error } => println!("the tool said no: {error}"),
//!     Outcome::Stopped { stop } => println!("stopped: {stop}"),
//!     _ => {}
//! }
//! # Ok(()) }
//! ```
//!
//! Cargo feature `kv` (on by default) adds the tools' key-value storage, a bundled SQLite file.

mod boundary;
mod capabilities;
mod contract;
mod convert;
mod digest;
mod engine;
mod host;
pub mod inspect;
pub mod oci;
pub mod policy;
mod record;
mod registry;
pub mod signing;
mod store;
pub mod tls;

pub use boundary::{CallReport, Outcome, OutputKind, Stop, Usage};
pub use capabilities::caller::CallContext;
pub use capabilities::denials::Denial;
pub use capabilities::kv::SCHEMA as KV_SCHEMA;
pub use capabilities::log::LogLine;
pub use capabilities::stdio::StreamName;
pub use capabilities::{Capability, GrantKey, GrantMatch};
pub use contract::ToolFunction;
pub use convert::{ArgumentError, Problem, canonical_json, json_kind};
pub use digest::Sha256Digest;
pub use host::{CallError, Host};
pub use policy::{Limits, Policy, PolicyError};
pub use registry::{
    CacheOutcome, LoadError, LoadEvent, LoadedTool, NotAComponent, check_signature, component_bytes,
};

/// Limits every call has whatever its whitelist entry says.
pub mod limits {
    pub use crate::capabilities::denials::MAX_DENIALS;
    pub use crate::capabilities::log::{
        MAX_BYTES as MAX_LOG_BYTES, MAX_LINE as MAX_LOG_LINE, MAX_LINES as MAX_LOG_LINES,
    };
    pub use crate::engine::MAX_TABLE_ELEMENTS;
}
