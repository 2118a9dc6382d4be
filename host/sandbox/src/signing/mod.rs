//! Signed tools: one minisign (Ed25519) signature over a component's digest together with its
//! whitelist entry, so a reviewer's approval covers what the tool may do, not only its bytes.
//!
//! A signature file is JSON: the signed [`Statement`] (readable, so a refusal can say which key
//! changed) and the minisign signature of its canonical bytes. Keys are ordinary minisign keys:
//! `minisign -G` and `harness keys signing` make the same files.
//!
//! ```
//! use harness_sandbox::signing::{self, SigningKey, Trust, Verdict};
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("calc.wasm"), b"\0asm\x0d\0\x01\0")?;
//! # let digest = harness_sandbox::Sha256Digest::of(b"\0asm\x0d\0\x01\0");
//! # let whitelist = format!("[tools.calc]\ncomponent = \"calc.wasm\"\nsha256 = \"{digest}\"\n");
//! # let policy = harness_sandbox::Policy::parse(&whitelist, &dir.path().join("harness.toml"))?;
//! let key = SigningKey::generate()?;
//! let tool = &policy.tools()["calc"];
//! let signature = signing::sign(&tool.signing.statement, &key)?;
//! let trust = Trust::from_keys([("reviewer", key.public_key())])?;
//! let verdict = signing::verify(&tool.signing.statement, Some(&signature), &trust)?;
//! assert!(matches!(verdict, Verdict::Signed { ref key, .. } if key == "reviewer"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod statement;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use minisign::{PublicKey, SecretKey, SignatureBox};
use serde::{Deserialize, Serialize};

pub use statement::{Difference, Statement};

/// The trusted signing keys of a whitelist (`[trust] keys`), by the name reviewers know them by.
#[derive(Clone, Default)]
pub struct Trust {
    keys: BTreeMap<String, PublicKey>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.keys
                    .iter()
                    .map(|(name, key)| (name, key_id(key.keynum()))),
            )
            .finish()
    }
}

impl Trust {
    /// Trusts each `(name, key)`, the key as minisign prints it (`RW…`, base64). An error names
    /// the key that is not one.
    pub fn from_keys<N: Into<String>>(
        keys: impl IntoIterator<Item = (N, String)>,
    ) -> Result<Self, BadKey> {
        let mut trusted = BTreeMap::new();
        for (name, text) in keys {
            let name = name.into();
            let key = PublicKey::from_base64(text.trim()).map_err(|e| BadKey {
                message: format!("not a minisign public key (the `RW…` line of a .pub file): {e}"),
                name: name.clone(),
            })?;
            trusted.insert(name, key);
        }
        Ok(Self { keys: trusted })
    }

    /// The names of the trusted keys.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn by_keynum(&self, keynum: &[u8]) -> Option<(&str, &PublicKey)> {
        self.keys
            .iter()
            .find(|(_, key)| key.keynum() == keynum)
            .map(|(name, key)| (name.as_str(), key))
    }
}

/// A trusted key that is not a minisign public key.
#[derive(Debug, thiserror::Error)]
#[error("trust.keys.{name}: {message}")]
pub struct BadKey {
    /// The key's name.
    pub name: String,
    /// What is wrong with it.
    pub message: String,
}

/// How a tool's signature stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// No signature, and none is required.
    Unsigned,
    /// Signed by trusted key `key` over exactly this component and entry.
    Signed {
        /// The key's name in `[trust] keys`.
        key: String,
        /// Its minisign key ID (16 hex digits), as `minisign` prints it.
        key_id: String,
    },
}

/// Why a tool's signature is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Signatures are required and there is none.
    #[error(
        "signatures are required, but there is no signature at {file}; have a reviewer run `harness sign {tool} --key KEY`"
    )]
    Missing { tool: String, file: PathBuf },
    /// The signature file is not one.
    #[error("{file} is not a harness signature: {message}")]
    Malformed { file: PathBuf, message: String },
    /// Made by a key the whitelist does not trust.
    #[error(
        "signed by key ID {key_id}, which is not in [trust] keys (trusted: {})",
        if trusted.is_empty() { "none".to_owned() } else { trusted.join(", ") }
    )]
    UnknownKey {
        key_id: String,
        trusted: Vec<String>,
    },
    /// The signature does not verify: the file was altered after signing.
    #[error(
        "the signature in {file} does not verify with trusted key `{key}`: the file was altered after signing"
    )]
    Invalid { file: PathBuf, key: String },
    /// Signed for another tool name.
    #[error("the signature in {file} was made for tool `{signed}`")]
    OtherTool { file: PathBuf, signed: String },
    /// Signed over another component.
    #[error(
        "the signature by `{key}` covers component sha256 {signed}, but the whitelist pins {pinned}; the component changed since it was signed"
    )]
    OtherDigest {
        key: String,
        signed: String,
        pinned: String,
    },
    /// Signed over another entry: grants, limits or gates changed since.
    #[error(
        "the signature by `{key}` covers another entry; changed since signing: {}",
        differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    OtherEntry {
        key: String,
        differences: Vec<Difference>,
    },
}

/// A signature as stored in a file or a registry: the statement and minisign's signature box.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// What was signed, as JSON.
    pub statement: serde_json::Value,
    /// The minisign signature of the statement's canonical bytes, as `minisign` writes it.
    pub minisign: String,
}

impl SignatureFile {
    /// Reads a signature file; `Ok(None)` when there is none at `path`.
    pub fn read(path: &Path) -> Result<Option<Self>, SignatureError> {
        let malformed = |message: String| SignatureError::Malformed {
            file: path.to_owned(),
            message,
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| malformed(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(malformed(e.to_string())),
        }
    }

    /// Writes it to `path` (replacing what is there).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("JSON values serialize");
        text.push('\n');
        std::fs::write(path, text)
    }
}

/// A minisign secret key, ready to sign.
pub struct SigningKey {
    secret: SecretKey,
    public: PublicKey,
}

/// Why a signing key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl SigningKey {
    /// A fresh random key pair.
    pub fn generate() -> Result<Self, KeyError> {
        let pair = minisign::KeyPair::generate_unencrypted_keypair()
            .map_err(|e| KeyError(e.to_string()))?;
        Ok(Self {
            secret: pair.sk,
            public: pair.pk,
        })
    }

    /// Reads a minisign secret key file, decrypting it with `password` when it is encrypted
    /// (asking on the terminal when `password` is `None`).
    pub fn read(path: &Path, password: Option<String>) -> Result<Self, KeyError> {
        let failed = |e: &dyn std::fmt::Display| KeyError(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| failed(&e))?;
        let decode = || minisign::SecretKeyBox::from_string(&text);
        let secret = match decode().and_then(SecretKey::from_unencrypted_box) {
            Ok(secret) => secret,
            // minisign tells an encrypted key only by this refusal.
            Err(e) if e.to_string().contains("encrypted") => decode()
                .and_then(|b| SecretKey::from_box(b, password))
                .map_err(|e| failed(&e))?,
            Err(e) => return Err(failed(&e)),
        };
        let public = PublicKey::from_secret_key(&secret).map_err(|e| failed(&e))?;
        Ok(Self { secret, public })
    }

    /// The public key, as the `RW…` line that goes into `[trust] keys`.
    pub fn public_key(&self) -> String {
        self.public.to_base64()
    }

    /// The key ID, as `minisign` prints it.
    pub fn key_id(&self) -> String {
        key_id(self.public.keynum())
    }
}

/// How a new secret key is protected.
#[derive(Debug)]
pub enum KeyPassword {
    /// Not encrypted (for a secret store that protects it).
    None,
    /// Encrypted with this password.
    Given(String),
    /// Encrypted with a password asked on the terminal (twice, not echoed).
    Prompt,
}

/// Makes a new key pair and writes it as minisign files: `secret` (created, readable by its owner
/// only, encrypted unless `password` is [`KeyPassword::None`]) and `public`. Returns the public
/// key's line and key ID. Existing files are never overwritten.
pub fn write_key_pair(
    secret: &Path,
    public: &Path,
    name: &str,
    password: KeyPassword,
) -> Result<(String, String), KeyError> {
    let failed = |e: minisign::PError| KeyError(e.to_string());
    let encrypted = !matches!(password, KeyPassword::None);
    let pair = match password {
        KeyPassword::None => minisign::KeyPair::generate_unencrypted_keypair(),
        KeyPassword::Given(password) => {
            minisign::KeyPair::generate_encrypted_keypair(Some(password))
        }
        KeyPassword::Prompt => minisign::KeyPair::generate_encrypted_keypair(None),
    }
    .map_err(failed)?;
    let comment = if encrypted {
        format!("harness signing key {name}")
    } else {
        format!("harness signing key {name} (unencrypted)")
    };
    let secret_box = pair.sk.to_box(Some(&comment)).map_err(failed)?;
    let public_box = pair.pk.to_box().map_err(failed)?;
    let io = |path: &Path, e: std::io::Error| KeyError(format!("{}: {e}", path.display()));
    write_new(secret, secret_box.to_string().as_bytes(), 0o600).map_err(|e| io(secret, e))?;
    write_new(public, public_box.to_string().as_bytes(), 0o644).map_err(|e| io(public, e))?;
    Ok((pair.pk.to_base64(), key_id(pair.pk.keynum())))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)?.write_all(bytes)
}

/// Signs `statement` with `key`.
pub fn sign(statement: &Statement, key: &SigningKey) -> Result<SignatureFile, KeyError> {
    let trusted_comment = format!(
        "harness tool {} sha256:{}",
        statement.tool(),
        statement.sha256()
    );
    let signature = minisign::sign(
        Some(&key.public),
        &key.secret,
        Cursor::new(statement.to_bytes()),
        Some(&trusted_comment),
        Some("signature of a harness tool statement"),
    )
    .map_err(|e| KeyError(e.to_string()))?;
    Ok(SignatureFile {
        statement: statement.to_json(),
        minisign: signature.into_string(),
    })
}

/// Checks `signature` (read from `file`) against the whitelist's `statement` for the tool.
/// `None` is [`Verdict::Unsigned`]; whether that is acceptable is the caller's rule.
pub fn verify(
    statement: &Statement,
    signature: Option<&SignatureFile>,
    trust: &Trust,
) -> Result<Verdict, SignatureError> {
    verify_file(statement, signature, trust, Path::new("the signature"))
}

/// [`verify`], naming `file` in errors.
pub(crate) fn verify_file(
    statement: &Statement,
    signature: Option<&SignatureFile>,
    trust: &Trust,
    file: &Path,
) -> Result<Verdict, SignatureError> {
    let Some(signature) = signature else {
        return Ok(Verdict::Unsigned);
    };
    let malformed = |message: String| SignatureError::Malformed {
        file: file.to_owned(),
        message,
    };
    let sig_box = SignatureBox::from_string(&signature.minisign)
        .map_err(|e| malformed(format!("`minisign`: {e}")))?;
    let (name, key) =
        trust
            .by_keynum(sig_box.keynum())
            .ok_or_else(|| SignatureError::UnknownKey {
                key_id: key_id(sig_box.keynum()),
                trusted: trust.names().map(str::to_owned).collect(),
            })?;
    let verifies = |bytes: Vec<u8>| {
        minisign::verify(key, &sig_box, Cursor::new(bytes), true, false, false).is_ok()
    };
    if verifies(statement.to_bytes()) {
        return Ok(Verdict::Signed {
            key: name.to_owned(),
            key_id: key_id(key.keynum()),
        });
    }
    let signed = Statement::from_json(&signature.statement)
        .map_err(|e| malformed(format!("`statement`: {e}")))?;
    if !verifies(signed.to_bytes()) {
        return Err(SignatureError::Invalid {
            file: file.to_owned(),
            key: name.to_owned(),
        });
    }
    if signed.tool() != statement.tool() {
        return Err(SignatureError::OtherTool {
            file: file.to_owned(),
            signed: signed.tool().to_owned(),
        });
    }
    if signed.sha256() != statement.sha256() {
        return Err(SignatureError::OtherDigest {
            key: name.to_owned(),
            signed: signed.sha256().to_string(),
            pinned: statement.sha256().to_string(),
        });
    }
    Err(SignatureError::OtherEntry {
        key: name.to_owned(),
        differences: statement.entry_differences(&signed),
    })
}

fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&keynum[..8]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}
