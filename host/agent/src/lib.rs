//! Harness's agent: a model proposes tool calls and the harness decides, around the sandbox of
//! [`harness_sandbox`].
//!
//! Each call a model proposes passes the [`gates`] (kill switch, routing, role, rate, budget,
//! arguments, approval) before the sandbox runs it; personal data is screened ([`guards`])
//! before text reaches the model; every step is a record in a hash-chained audit log
//! ([`state`]). [`config`] reads the agent's part of the whitelist, [`models`] speaks to the
//! providers, [`run`] is the loop, and [`eval`] and [`replay`] re-run it against golden datasets
//! and recorded runs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use harness_agent::{config::Config, gates::Principal, models, run::Agent, state::StateStore};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Arc::new(Config::load("harness.toml")?);
//! let host = harness_sandbox::Host::load(config.policy().clone())?;
//! let state = Arc::new(StateStore::for_config(&config)?);
//! let settings = &config.agents()["support"];
//! let model = models::connect(&config.models()[&settings.model], &|name| std::env::var(name).ok())?;
//! let agent = Agent::new(host, state, config.clone(), "support", model)?;
//! let principal = Principal { name: "ana".into(), roles: ["support".to_owned()].into() };
//! let report = agent.run(&principal, "Is the VPN down?").await?;
//! println!("{}", report.answer);
//! # Ok(()) }
//! ```
//!
//! `cargo run -p harness-agent --example scripted_run` runs one end to end with a scripted model.

pub mod calls;
pub mod config;
pub mod eval;
pub mod gates;
pub mod guards;
pub mod models;
pub mod replay;
pub mod routing;
pub mod run;
pub mod scratch;
pub mod state;
pub mod telemetry;
pub mod webhooks;
