//! Tools from an OCI registry: `component = "oci://host:port/ns/name:tag"`, in the CNCF wasm
//! artifact layout that wkg and Wassette use (one `application/wasm` layer, a
//! `application/vnd.wasm.config.v0+json` config), pulled once into the cache by digest and
//! checked against the whitelist's pin before anything else reads it.
//!
//! A tag that now names another component is refused (both digests in the error); a cached
//! component loads without the registry. Signatures travel as OCI referrers of the component's
//! manifest (artifact type [`SIGNATURE_ARTIFACT_TYPE`]), through the referrers API or, on
//! registries without it, the referrers tag schema (`sha256-<digest>`).

mod client;

use std::fmt;
use std::path::{Path, PathBuf};

use oci_client::Reference;

use crate::digest::Sha256Digest;
use crate::signing::SignatureFile;

pub use client::{Pushed, fetch, push};

/// The artifact type of a harness signature attached to a component.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.harness.tool-signature.v1+json";
/// The media type of the layer of a wasm component (CNCF wasm OCI artifact layout).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The media type of the config of a wasm component (CNCF wasm OCI artifact layout).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";

/// The largest component the host pulls.
const MAX_COMPONENT_BYTES: i64 = 256 << 20;
/// The largest signature the host pulls.
const MAX_SIGNATURE_BYTES: i64 = 1 << 20;

/// Where a component comes from in a registry: `oci://registry/repository:tag` (or `@sha256:…`).
#[derive(Clone, PartialEq, Eq)]
pub struct OciSource {
    reference: Reference,
}

impl OciSource {
    /// Parses `oci://…`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| format!("`{text}` does not start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("`{text}` has no repository: use oci://HOST[:PORT]/NAME:TAG"))?;
        if registry.is_empty() || path.is_empty() {
            return Err(format!(
                "`{text}` is not oci://HOST[:PORT]/NAME:TAG (or @sha256:DIGEST)"
            ));
        }
        let reference: Reference = rest
            .parse()
            .map_err(|e| format!("`{text}` is not an OCI reference: {e}"))?;
        if reference.registry() != registry {
            return Err(format!(
                "`{text}` must name its registry host explicitly (got `{}`)",
                reference.registry()
            ));
        }
        Ok(Self { reference })
    }

    /// The registry host (and port).
    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    pub(crate) fn reference(&self) -> &Reference {
        &self.reference
    }
}

impl fmt::Display for OciSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}", self.reference.whole())
    }
}

impl fmt::Debug for OciSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where the cache keeps a pulled component with digest `digest`, under the compile cache.
pub(crate) fn cached_component(cache_dir: &Path, digest: &Sha256Digest) -> PathBuf {
    cache_dir.join("oci").join(format!("{digest}.wasm"))
}

/// Where the cache keeps the signature pulled with it.
pub(crate) fn cached_signature(cache_dir: &Path, digest: &Sha256Digest) -> PathBuf {
    cache_dir.join("oci").join(format!("{digest}.sig"))
}

/// Why a component could not be pulled or pushed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The registry did not answer.
    #[error(
        "registry {registry} is unreachable ({message}); a component already in the cache loads without it"
    )]
    Unreachable { registry: String, message: String },
    /// The registry refused the credentials, or asked for some.
    #[error(
        "registry {registry} refused access to {source_ref}: {message}; give credentials in HARNESS_REGISTRY_USERNAME and HARNESS_REGISTRY_PASSWORD or with `docker login {registry}`"
    )]
    Unauthorized {
        registry: String,
        source_ref: String,
        message: String,
    },
    /// Nothing at that reference.
    #[error("{source_ref} does not exist in the registry")]
    NotFound { source_ref: String },
    /// The tag names another component than the pinned one: refused, whatever it is.
    #[error(
        "{source_ref} now holds component sha256 {found}, but the whitelist pins {pinned}; the tag was moved to another component — review it and update the pin, or point the tag back"
    )]
    Retagged {
        source_ref: String,
        pinned: String,
        found: String,
    },
    /// The artifact is not a wasm component in the CNCF layout.
    #[error("{source_ref} is not a wasm component artifact: {message}")]
    NotAComponent { source_ref: String, message: String },
    /// The registry answered with something else than it promised.
    #[error("{source_ref}: {message}")]
    Registry { source_ref: String, message: String },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads the signature to attach when pushing.
pub fn read_signature(path: &Path) -> Result<SignatureFile, OciError> {
    let io = |source| OciError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    serde_json::from_slice(&bytes).map_err(|e| io(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_registry_repository_and_tag() {
        let source = OciSource::parse("oci://127.0.0.1:5000/tools/calc:1.0").unwrap();
        assert_eq!(source.registry(), "127.0.0.1:5000");
        assert_eq!(source.to_string(), "oci://127.0.0.1:5000/tools/calc:1.0");
        for bad in [
            "127.0.0.1:5000/calc:1",
            "oci://calc:1",
            "oci:///calc",
            "oci://h/UPPER",
        ] {
            assert!(OciSource::parse(bad).is_err(), "{bad}");
        }
    }
}
