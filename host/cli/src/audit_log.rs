//! `harness audit-log verify|head`: check the agent's hash-chained audit log.

use anyhow::{Context, Result};
use harness_agent::config::Config;
use harness_agent::state::StateStore;

use crate::exit::Exit;

fn open(config: &Config) -> Result<StateStore> {
    Ok(StateStore::for_config(config)?)
}

/// Walks the whole chain (and checks it ends at `head`, if given).
pub fn verify(config: &Config, head: Option<&str>) -> Result<Exit> {
    let store = open(config)?;
    let found = store
        .verify_audit(head)
        .with_context(|| format!("reading {}", store.location()))?;
    match found {
        Ok(verified) => {
            println!(
                "audit log {}: {} records, chain intact; head {}",
                store.location(),
                verified.records,
                verified.head
            );
            Ok(Exit::Success)
        }
        Err(tampering) => {
            println!("audit log {}: TAMPERED: {tampering}", store.location());
            Ok(Exit::Tampered)
        }
    }
}

/// Prints the hash of the last record, to anchor outside the host.
pub fn head(config: &Config) -> Result<Exit> {
    println!("{}", open(config)?.audit_head()?);
    Ok(Exit::Success)
}
