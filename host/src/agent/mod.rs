//! The agent side of the harness: models propose tool calls, the harness decides. This module
//! holds the model layer ([`models`]) and the durable state ([`state`]: the hash-chained audit
//! log); the loop and its gates build on them.

pub mod eval;
pub mod gates;
pub mod guards;
pub mod models;
pub mod replay;
pub mod routing;
pub mod run;
pub mod state;
