//! Supply chain: `harness keys signing`, `harness sign`, `harness verify`, `harness push`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use harness_sandbox::oci::{self, OciSource};
use harness_sandbox::policy::ToolPolicy;
use harness_sandbox::signing::{self, KeyPassword, SigningKey, Verdict};
use harness_sandbox::{Policy, check_signature, component_bytes};

use crate::exit::Exit;

/// Where a signing key's password comes from when not typed at the terminal.
const PASSWORD_VAR: &str = "HARNESS_SIGNING_PASSWORD";

/// `harness keys signing NAME`: writes DIR/NAME.key and DIR/NAME.pub; prints the trust entry.
pub fn new_signing_key(name: &str, dir: &Path, no_password: bool) -> Result<Exit> {
    let password = match (no_password, std::env::var(PASSWORD_VAR)) {
        (true, _) => KeyPassword::None,
        (false, Ok(password)) => KeyPassword::Given(password),
        (false, Err(_)) => KeyPassword::Prompt,
    };
    let secret = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let (public_key, key_id) = signing::write_key_pair(&secret, &public, name, password)?;
    println!(
        "secret key: {} (keep it with the reviewers; never commit it)",
        secret.display()
    );
    println!("public key: {}\nkey ID:     {key_id}\n", public.display());
    println!("whitelist entry:\n[trust.keys]\n{name} = \"{public_key}\"");
    Ok(Exit::Success)
}

/// `harness sign TOOL --key KEY`.
pub fn sign(policy: &Policy, name: &str, key: &Path, out: Option<&Path>) -> Result<Exit> {
    let tool = crate::load::find_tool(policy, name)?;
    component_bytes(policy, tool)?;
    // What the signature will vouch for, shown before the key's password is asked.
    println!(
        "statement to sign (the component's digest and the tool's entry):\n{}",
        serde_json::to_string_pretty(&tool.signing.statement.to_json())?
    );
    let key = SigningKey::read(key, std::env::var(PASSWORD_VAR).ok())?;
    let signature = signing::sign(&tool.signing.statement, &key)?;
    // A signature kept in the cache comes from the registry: the new one goes where it can be
    // pushed from.
    let file = match out {
        Some(out) => out.to_owned(),
        None if tool.signing.from_registry => PathBuf::from(format!("{name}.sig")),
        None => tool.signing.file.clone(),
    };
    signature
        .write(&file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "signed {name} (sha256 {}) with key ID {}: {}",
        tool.sha256,
        key.key_id(),
        file.display()
    );
    if let Some(source) = &tool.registry {
        println!(
            "publish it beside the component: harness push COMPONENT {source} --signature {}",
            file.display()
        );
    }
    Ok(Exit::Success)
}

/// `harness verify [TOOL…]`: one line per tool; exit 3 when any is refused.
pub fn verify(policy: &Policy, names: &[String]) -> Result<Exit> {
    let tools: Vec<&ToolPolicy> = if names.is_empty() {
        policy.tools().values().collect()
    } else {
        names
            .iter()
            .map(|name| crate::load::find_tool(policy, name))
            .collect::<Result<_>>()?
    };
    let mut verdict = Exit::Success;
    for tool in tools {
        match component_bytes(policy, tool).and_then(|_| check_signature(policy, tool)) {
            Ok(signature) => println!("{}: {}", tool.name, describe(&signature, tool)),
            Err(e) => {
                println!("{}: REFUSED: {e}", tool.name);
                verdict = Exit::Load;
            }
        }
    }
    Ok(verdict)
}

/// A verdict in words, for `verify` and `audit`.
pub fn describe(signature: &Verdict, tool: &ToolPolicy) -> String {
    match signature {
        Verdict::Signed { key, key_id } => format!("signed by `{key}` (key ID {key_id})"),
        _ if tool.signing.required => "unsigned".into(),
        _ => "unsigned (signatures not required)".into(),
    }
}

/// `harness push FILE oci://…`.
pub fn push(component: &Path, target: &str, signature: Option<&Path>) -> Result<Exit> {
    let target = OciSource::parse(target).map_err(anyhow::Error::msg)?;
    let bytes =
        std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let signature = signature.map(oci::read_signature).transpose()?;
    let pushed = oci::push(bytes, &target, signature.as_ref())?;
    println!("pushed {target}");
    println!("sha256:   {}  (pin this in the whitelist)", pushed.sha256);
    println!("manifest: {}", pushed.manifest);
    if let Some(signature) = pushed.signature {
        println!("signature attached: {signature}");
    }
    Ok(Exit::Success)
}
