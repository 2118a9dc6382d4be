//! Harness host: runs WebAssembly tool components for AI agents behind one capability-checked,
//! metered call boundary.
//!
//! The path of a call, module by module:
//! [`policy`] (the whitelist) → [`registry`] (digest check, compile cache, pre-instantiation)
//! → [`contract`] (functions and JSON Schemas from WIT) → [`convert`] (JSON ⇄ WIT values)
//! → [`capabilities`] (what is linked) → [`boundary`] (fresh store, fuel, deadline, memory cap,
//! typed outcome) → [`audit`] (one record per call). [`Host`] ties them together; [`inspect`]
//! reports on a component for security review.

pub mod agent;
pub mod audit;
pub mod boundary;
pub mod capabilities;
pub mod contract;
pub mod convert;
pub mod digest;
pub mod engine;
mod host;
pub mod inspect;
pub mod policy;
pub mod registry;
pub mod sqlite;
mod tls;

pub use boundary::{CallReport, Outcome, OutputKind, Stop, Usage};
pub use capabilities::caller::CallContext;
pub use contract::ToolFunction;
pub use digest::Sha256Digest;
pub use host::{CallError, Host};
pub use policy::{Limits, Policy, PolicyError};
pub use registry::{CacheOutcome, LoadError, LoadEvent, LoadedTool, NotAComponent};
