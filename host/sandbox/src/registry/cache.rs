//! The on-disk cache of compiled components.
//!
//! Entries are keyed by the component's SHA-256 and the engine's compatibility hash, written
//! atomically into a directory only this user can write, and framed with a checksum. A corrupted,
//! truncated or foreign entry is never handed to wasmtime's `deserialize`: it is recompiled and
//! replaced.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::digest::Sha256Digest;

const MAGIC: &[u8; 16] = b"harness-cwasm-v1";

/// Where a compiled component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// A valid cache entry was loaded; nothing was compiled.
    Hit,
    /// There was no entry; the component was compiled and stored.
    Compiled,
    /// An entry existed but failed its checksum or could not be loaded; it was rebuilt.
    Rebuilt,
}

/// Errors of the cache directory itself (compile errors are the caller's).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory could not be created or written.
    #[error("compile cache {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The directory belongs to another user, so its entries cannot be trusted.
    #[error(
        "compile cache {dir} belongs to another user (mode {mode:o}); the host only loads compiled code from a directory it owns: choose another `host.cache_dir`"
    )]
    Insecure { dir: PathBuf, mode: u32 },
}

/// A directory of compiled components for one engine configuration.
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// Opens (creating if needed) the cache at `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        let io = |source| CacheError::Io {
            dir: dir.to_owned(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let meta = fs::metadata(dir).map_err(io)?;
            let mode = meta.mode() & 0o777;
            if meta.uid() != rustix::process::geteuid().as_raw() {
                return Err(CacheError::Insecure {
                    dir: dir.to_owned(),
                    mode,
                });
            }
            if mode & 0o022 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
            }
        }
        let mut hasher = HashToSha256(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key,
        })
    }

    /// The file an entry for `digest` lives in.
    pub fn entry_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// Returns the compiled component for `wasm` (whose digest is `digest`), compiling it with
    /// `compile` only when no valid entry exists.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &Sha256Digest,
        compile: impl FnOnce() -> wasmtime::Result<Vec<u8>>,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(digest);
        let mut outcome = CacheOutcome::Compiled;
        if let Ok(framed) = fs::read(&path) {
            match unframe(&framed) {
                // SAFETY: `payload` passed its checksum, and the file lives in a directory only
                // this user can write, under a name that includes this engine's compatibility
                // hash: it is a serialized component this host wrote.
                Some(payload) => match unsafe { Component::deserialize(engine, payload) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cached component unusable; recompiling")
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "cached component failed its checksum; recompiling")
                }
            }
            outcome = CacheOutcome::Rebuilt;
        }
        let compiled = compile()?;
        // SAFETY: the bytes were just produced by `precompile_component` on this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        if let Err(e) = self.store(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compile cache; continuing without it");
        }
        Ok((component, outcome))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(compiled))?;
        tmp.write_all(compiled)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map(drop).map_err(|e| e.error)
    }
}

fn unframe(framed: &[u8]) -> Option<&[u8]> {
    let rest = framed.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, payload) = rest.split_at(32);
    (Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash becomes a stable file key.
struct HashToSha256(Sha256);

impl Hasher for HashToSha256 {
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 state is read")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
