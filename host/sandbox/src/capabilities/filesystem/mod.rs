//! `wasi:filesystem`: only the granted directories exist for the tool, each read-only or
//! read-write. wasmtime-wasi resolves every path inside its preopen (through cap-std), so `..`,
//! absolute paths and symlinks cannot leave it, and a read-only preopen refuses every change.
//! Each refusal is recorded ([`recorded`]).

mod recorded;

pub(crate) use recorded::add_to_linker;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::policy::{FsGrant, FsMode};

/// Why a granted directory could not be opened for a call.
#[derive(Debug, thiserror::Error)]
#[error("the granted directory {host} (guest {guest}) cannot be opened: {message}")]
pub struct PreopenError {
    /// The host directory.
    pub host: String,
    /// Its guest path.
    pub guest: String,
    /// What went wrong.
    pub message: String,
}

/// Preopens each granted directory in `wasi`.
pub fn grant(wasi: &mut WasiCtxBuilder, grants: &[FsGrant]) -> Result<(), PreopenError> {
    for grant in grants {
        let perms = match grant.mode {
            FsMode::ReadOnly => FsPerms::ReadOnly,
            FsMode::ReadWrite => FsPerms::ReadWrite,
        };
        wasi.preopened_dir(&grant.host, &grant.guest, perms)
            .map_err(|e| PreopenError {
                host: grant.host.display().to_string(),
                guest: grant.guest.clone(),
                message: format!("{e:#}"),
            })?;
    }
    Ok(())
}
