//! Harness's agent: a model proposes tool calls and the harness decides, around the sandbox of
//! [`harness_sandbox`].
//!
//! Each call a model proposes passes the [`gates`] (kill switch, routing, role, rate, budget,
//! arguments, approval) before the sandbox runs it; personal data is screened ([`guards`])
//! before text reaches the model; every step is a record in a hash-chained audit log
//! ([`state`]). [`config`] reads the agent's part of the whitelist, [`models`] speaks to the
//! providers, [`run`] is the loop, and [`eval`] and [`replay`] re-run it against golden datasets
//! and recorded runs.

pub mod config;
pub mod eval;
pub mod gates;
pub mod guards;
pub mod models;
pub mod replay;
pub mod routing;
pub mod run;
pub mod state;
