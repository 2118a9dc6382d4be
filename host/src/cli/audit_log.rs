//! `harness audit-log verify|head`: check the agent's hash-chained audit log.

use std::process::ExitCode;

use anyhow::{Context, Result};
use harness_host::Policy;
use harness_host::agent::state::StateStore;

/// Exit code: the audit log's chain is broken.
const EXIT_TAMPERED: u8 = 7;

fn open(policy: &Policy) -> Result<StateStore> {
    Ok(StateStore::open(&policy.host.data_dir)?)
}

/// Walks the whole chain (and checks it ends at `head`, if given).
pub fn verify(policy: &Policy, head: Option<&str>) -> Result<ExitCode> {
    let store = open(policy)?;
    let found = store
        .verify_audit(head)
        .with_context(|| format!("reading {}", store.path().display()))?;
    match found {
        Ok(verified) => {
            println!(
                "audit log {}: {} records, chain intact; head {}",
                store.path().display(),
                verified.records,
                verified.head
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(tampering) => {
            println!(
                "audit log {}: TAMPERED: {tampering}",
                store.path().display()
            );
            Ok(ExitCode::from(EXIT_TAMPERED))
        }
    }
}

/// Prints the hash of the last record, to anchor outside the host.
pub fn head(policy: &Policy) -> Result<ExitCode> {
    println!("{}", open(policy)?.audit_head()?);
    Ok(ExitCode::SUCCESS)
}
