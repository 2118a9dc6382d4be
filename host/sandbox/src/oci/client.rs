//! Talking to the registry: credentials, transport, pull into the cache, push with a signature.

use std::io::Write as _;
use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{
    ImageIndexEntry, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor,
    OciImageIndex, OciImageManifest, OciManifest,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::{
    MAX_COMPONENT_BYTES, MAX_SIGNATURE_BYTES, OciError, OciSource, SIGNATURE_ARTIFACT_TYPE,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};
use crate::digest::Sha256Digest;
use crate::signing::SignatureFile;

/// The OCI "empty" config of an artifact without one.
const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Pulls the component `source` names into `component` (when given; the cache may hold it
/// already), refusing any other than `pinned`, and the newest signature attached to it into
/// `signature` (when given and there is one). Blocks; runs on its own thread and runtime, so it
/// may be called from inside or outside an async context.
pub fn fetch(
    source: &OciSource,
    pinned: &Sha256Digest,
    component: Option<&Path>,
    signature: Option<&Path>,
) -> Result<(), OciError> {
    block_on(async {
        let registry = Registry::new(source);
        let reference = source.reference();
        let (manifest, manifest_digest) = registry
            .client
            .pull_image_manifest(reference, &registry.auth)
            .await
            .map_err(|e| registry.error(e))?;
        let layer = component_layer(source, &manifest)?;
        let found = digest_of(source, &layer.digest)?;
        if found != *pinned {
            return Err(OciError::Retagged {
                source_ref: source.to_string(),
                pinned: pinned.to_string(),
                found: found.to_string(),
            });
        }
        if let Some(component) = component {
            let bytes = registry.blob(reference, layer, MAX_COMPONENT_BYTES).await?;
            if Sha256Digest::of(&bytes) != *pinned {
                return Err(OciError::Registry {
                    source_ref: source.to_string(),
                    message: format!("the layer's bytes do not have the digest {found} it claims"),
                });
            }
            write_atomically(component, &bytes)?;
        }
        let Some(signature) = signature else {
            return Ok(());
        };
        let subject = Reference::with_digest(
            reference.resolve_registry().to_owned(),
            reference.repository().to_owned(),
            manifest_digest,
        );
        if let Some(found) = registry.newest_signature(&subject).await? {
            let text = serde_json::to_vec_pretty(&found).expect("JSON values serialize");
            write_atomically(signature, &text)?;
        }
        Ok(())
    })
}

/// What [`push`] published.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The component's digest (what a whitelist pins).
    pub sha256: Sha256Digest,
    /// The digest of its manifest.
    pub manifest: String,
    /// The digest of the attached signature's manifest, when one was pushed.
    pub signature: Option<String>,
}

/// Publishes the component `bytes` at `target` (CNCF wasm layout: its world's imports and exports
/// in the config), with `signature` attached as a referrer of its manifest.
pub fn push(
    bytes: Vec<u8>,
    target: &OciSource,
    signature: Option<&SignatureFile>,
) -> Result<Pushed, OciError> {
    let (imports, exports) = world_of(&bytes).map_err(|message| OciError::NotAComponent {
        source_ref: target.to_string(),
        message,
    })?;
    block_on(async {
        let registry = Registry::new(target);
        let reference = target.reference();
        let sha256 = Sha256Digest::of(&bytes);
        let config = serde_json::json!({
            "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [format!("sha256:{sha256}")],
            "component": { "imports": imports, "exports": exports, "target": null },
        });
        let layers = vec![ImageLayer::new(bytes, WASM_LAYER_MEDIA_TYPE.into(), None)];
        let config = Config::new(
            serde_json::to_vec(&config).expect("JSON values serialize"),
            WASM_CONFIG_MEDIA_TYPE.into(),
            None,
        );
        let mut manifest = OciImageManifest::build(&layers, &config, None);
        manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.into());
        registry
            .client
            .push(reference, &layers, config, &registry.auth, Some(manifest))
            .await
            .map_err(|e| registry.error(e))?;
        let (_, manifest_digest) = registry
            .client
            .pull_image_manifest(reference, &registry.auth)
            .await
            .map_err(|e| registry.error(e))?;
        let signature = match signature {
            Some(signature) => Some(
                registry
                    .attach_signature(reference, &manifest_digest, signature)
                    .await?,
            ),
            None => None,
        };
        Ok(Pushed {
            sha256,
            manifest: manifest_digest,
            signature,
        })
    })
}

/// A client for one registry, with the credentials the environment gives for it.
struct Registry {
    client: Client,
    auth: RegistryAuth,
    source: String,
    name: String,
}

impl Registry {
    fn new(source: &OciSource) -> Self {
        let registry = source.registry().to_owned();
        // reqwest is built without a default TLS provider (the host brings ring); an error only
        // says one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if is_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        });
        Self {
            auth: credentials(&registry),
            client,
            source: source.to_string(),
            name: registry,
        }
    }

    async fn blob(
        &self,
        reference: &Reference,
        layer: &OciDescriptor,
        max: i64,
    ) -> Result<Vec<u8>, OciError> {
        let too_large = |size: String| OciError::Registry {
            source_ref: self.source.clone(),
            message: format!(
                "a layer of {size} bytes is larger than the {max} bytes the host pulls"
            ),
        };
        if !(0..=max).contains(&layer.size) {
            return Err(too_large(layer.size.to_string()));
        }
        // The descriptor's size is the registry's word: the bytes are counted as they arrive.
        let mut capped = Capped {
            bytes: Vec::new(),
            max: layer.size as usize,
        };
        let pulled = self.client.pull_blob(reference, layer, &mut capped).await;
        if capped.bytes.len() > capped.max {
            return Err(too_large(format!("more than {}", layer.size)));
        }
        pulled.map_err(|e| self.error(e))?;
        Ok(capped.bytes)
    }

    /// The signature attached last to `subject` (a manifest by digest), if any.
    async fn newest_signature(
        &self,
        subject: &Reference,
    ) -> Result<Option<SignatureFile>, OciError> {
        let index = self
            .client
            .pull_referrers(subject, Some(SIGNATURE_ARTIFACT_TYPE))
            .await
            .map_err(|e| self.error(e))?;
        let Some(entry) = index.manifests.last() else {
            return Ok(None);
        };
        let at = Reference::with_digest(
            subject.resolve_registry().to_owned(),
            subject.repository().to_owned(),
            entry.digest.clone(),
        );
        let (manifest, _) = self
            .client
            .pull_image_manifest(&at, &self.auth)
            .await
            .map_err(|e| self.error(e))?;
        let [layer] = manifest.layers.as_slice() else {
            return Err(self.malformed_signature("it does not have exactly one layer"));
        };
        let bytes = self.blob(&at, layer, MAX_SIGNATURE_BYTES).await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.malformed_signature(&e.to_string()))
    }

    /// Pushes `signature` as an artifact whose subject is the manifest `subject_digest`, and lists
    /// it in the referrers tag schema index (for registries without the referrers API).
    async fn attach_signature(
        &self,
        reference: &Reference,
        subject_digest: &str,
        signature: &SignatureFile,
    ) -> Result<String, OciError> {
        let at = |r: String| {
            Reference::with_digest(
                reference.resolve_registry().to_owned(),
                reference.repository().to_owned(),
                r,
            )
        };
        let layer = serde_json::to_vec(signature).expect("JSON values serialize");
        let empty = b"{}".to_vec();
        let layer_digest = format!("sha256:{}", Sha256Digest::of(&layer));
        let empty_digest = format!("sha256:{}", Sha256Digest::of(&empty));
        let subject = self
            .client
            .pull_manifest_raw(
                &at(subject_digest.to_owned()),
                &self.auth,
                &[OCI_IMAGE_MEDIA_TYPE],
            )
            .await
            .map_err(|e| self.error(e))?;
        let manifest = OciImageManifest {
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.into()),
            config: OciDescriptor {
                media_type: EMPTY_CONFIG_MEDIA_TYPE.into(),
                digest: empty_digest.clone(),
                size: empty.len() as i64,
                ..OciDescriptor::default()
            },
            layers: vec![OciDescriptor {
                media_type: SIGNATURE_ARTIFACT_TYPE.into(),
                digest: layer_digest.clone(),
                size: layer.len() as i64,
                ..OciDescriptor::default()
            }],
            subject: Some(OciDescriptor {
                media_type: OCI_IMAGE_MEDIA_TYPE.into(),
                digest: subject_digest.to_owned(),
                size: subject.0.len() as i64,
                ..OciDescriptor::default()
            }),
            ..OciImageManifest::default()
        };
        let body = serde_json::to_vec(&manifest).expect("manifests serialize");
        let digest = format!("sha256:{}", Sha256Digest::of(&body));
        let this = at(digest.clone());
        for (blob, blob_digest) in [(layer, &layer_digest), (empty, &empty_digest)] {
            self.client
                .push_blob(&this, blob, blob_digest)
                .await
                .map_err(|e| self.error(e))?;
        }
        self.client
            .push_manifest_raw(
                &this,
                body.clone(),
                OCI_IMAGE_MEDIA_TYPE.parse().expect("a valid header"),
            )
            .await
            .map_err(|e| self.error(e))?;

        let tag = Reference::with_tag(
            reference.resolve_registry().to_owned(),
            reference.repository().to_owned(),
            subject_digest.replace(':', "-"),
        );
        let mut index = match self.client.pull_manifest(&tag, &self.auth).await {
            Ok((OciManifest::ImageIndex(index), _)) => index,
            _ => OciImageIndex {
                schema_version: 2,
                media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.into()),
                manifests: Vec::new(),
                artifact_type: None,
                annotations: None,
            },
        };
        index.manifests.push(ImageIndexEntry {
            media_type: OCI_IMAGE_MEDIA_TYPE.into(),
            digest: digest.clone(),
            size: body.len() as i64,
            platform: None,
            annotations: None,
            artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.into()),
        });
        self.client
            .push_manifest(&tag, &OciManifest::ImageIndex(index))
            .await
            .map_err(|e| self.error(e))?;
        Ok(digest)
    }

    fn malformed_signature(&self, message: &str) -> OciError {
        OciError::Registry {
            source_ref: self.source.clone(),
            message: format!("the attached signature is malformed: {message}"),
        }
    }

    /// Turns a client error into one that says what to do, never with credentials in it.
    fn error(&self, error: OciDistributionError) -> OciError {
        use oci_client::errors::OciErrorCode as Code;
        let source_ref = self.source.clone();
        let unauthorized = |message: String| OciError::Unauthorized {
            registry: self.name.clone(),
            source_ref: self.source.clone(),
            message,
        };
        let says = |codes: &[Code]| match &error {
            OciDistributionError::RegistryError { envelope, .. } => {
                envelope.errors.iter().any(|e| codes.contains(&e.code))
            }
            _ => false,
        };
        if says(&[Code::ManifestUnknown, Code::NameUnknown, Code::NotFound]) {
            return OciError::NotFound { source_ref };
        }
        if says(&[Code::Unauthorized, Code::Denied]) {
            return unauthorized("401 Unauthorized".into());
        }
        match error {
            OciDistributionError::ImageManifestNotFoundError(_)
            | OciDistributionError::ServerError { code: 404, .. } => {
                OciError::NotFound { source_ref }
            }
            OciDistributionError::AuthenticationFailure(message) => unauthorized(message),
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => unauthorized("401 Unauthorized".into()),
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                let mut cause: &dyn std::error::Error = &e;
                while let Some(deeper) = cause.source() {
                    cause = deeper;
                }
                OciError::Unreachable {
                    registry: self.name.clone(),
                    message: cause.to_string(),
                }
            }
            other => OciError::Registry {
                source_ref,
                message: other.to_string(),
            },
        }
    }
}

/// The names of what a component's world imports and exports.
fn world_of(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    crate::registry::sniff(bytes).map_err(|problem| format!("the file {problem}"))?;
    let decoded = crate::contract::decode_world(bytes).map_err(|e| e.to_string())?;
    let imports = crate::registry::imports(&decoded)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let exports = decoded.resolve.worlds[decoded.world]
        .exports
        .keys()
        .map(|key| decoded.resolve.name_world_key(key))
        .collect();
    Ok((imports, exports))
}

/// A buffer that refuses to grow past `max` bytes (keeping one byte more, to tell why it failed).
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let room = (self.max + 1).saturating_sub(self.bytes.len());
        if room <= data.len() {
            self.bytes.extend_from_slice(&data[..room]);
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the blob is larger than its descriptor says",
            )));
        }
        self.bytes.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The wasm layer of a component manifest, or why there is none.
fn component_layer<'m>(
    source: &OciSource,
    manifest: &'m OciImageManifest,
) -> Result<&'m OciDescriptor, OciError> {
    let refuse = |message: String| OciError::NotAComponent {
        source_ref: source.to_string(),
        message,
    };
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(refuse(format!(
            "its config is `{}`, not `{WASM_CONFIG_MEDIA_TYPE}`",
            manifest.config.media_type
        )));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER_MEDIA_TYPE => Ok(layer),
        [layer] => Err(refuse(format!(
            "its layer is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
            layer.media_type
        ))),
        layers => Err(refuse(format!("it has {} layers, not one", layers.len()))),
    }
}

fn digest_of(source: &OciSource, digest: &str) -> Result<Sha256Digest, OciError> {
    digest
        .strip_prefix("sha256:")
        .and_then(|hex| hex.parse().ok())
        .ok_or_else(|| OciError::Registry {
            source_ref: source.to_string(),
            message: format!("layer digest `{digest}` is not a sha256 digest"),
        })
}

/// Credentials for `registry`: `HARNESS_REGISTRY_USERNAME` and `HARNESS_REGISTRY_PASSWORD`, else
/// the docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, credential helpers
/// included), else none.
fn credentials(registry: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) = (
        std::env::var("HARNESS_REGISTRY_USERNAME"),
        std::env::var("HARNESS_REGISTRY_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user, password);
    }
    match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(_)) => {
            tracing::warn!(
                registry,
                "the docker config holds an identity token for this registry, which the host cannot use; pulling anonymously"
            );
            RegistryAuth::Anonymous
        }
        Err(_) => RegistryAuth::Anonymous,
    }
}

/// Registries on this machine may speak plain HTTP; any other must speak HTTPS.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(registry, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let io = |source| OciError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.persist(path).map(drop).map_err(|e| io(e.error))
}

fn block_on<T: Send>(
    work: impl Future<Output = Result<T, OciError>> + Send,
) -> Result<T, OciError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| OciError::Io {
                        path: ".".into(),
                        source,
                    })?;
                runtime.block_on(work)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::{Capped, is_loopback};

    #[tokio::test]
    async fn a_blob_longer_than_its_descriptor_is_cut_off() {
        use tokio::io::AsyncWriteExt as _;
        let mut exact = Capped {
            bytes: Vec::new(),
            max: 8,
        };
        exact.write_all(b"0123").await.unwrap();
        exact.write_all(b"4567").await.unwrap();
        assert_eq!(exact.bytes, b"01234567");

        let mut over = Capped {
            bytes: Vec::new(),
            max: 8,
        };
        over.write_all(b"0123").await.unwrap();
        assert!(over.write_all(&[b'x'; 1 << 20]).await.is_err());
        assert_eq!(over.bytes.len(), 9, "one byte past the limit, no more");
    }

    #[test]
    fn only_this_machine_may_speak_plain_http() {
        for host in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
