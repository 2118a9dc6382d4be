//! The agent side of the harness: models propose tool calls, the harness decides. This module
//! holds the model layer ([`models`]); the loop and its gates build on it.

pub mod models;
