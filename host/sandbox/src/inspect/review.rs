//! `harness audit COMPONENT --policy P --tool NAME`: a component's imports set against what the
//! whitelist grants the tool, one verdict per capability, and a one-line risk summary.

use serde::Serialize;

use super::Inspection;
use crate::capabilities::{self, Capability, GrantKey};
use crate::policy::{FsMode, ToolPolicy};

/// How a capability's import and grant compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Imported and granted.
    Granted,
    /// Imported, not granted: linked, and every use fails inside the tool. Not a warning: it is
    /// safe by construction, and language runtimes import some interfaces (Rust's and Python's
    /// standard libraries import `wasi:filesystem`) whether or not the tool uses them.
    DeniedAtRuntime,
    /// Imported, not granted, and the tool is strict: it will be refused at load (a warning).
    StrictRefusal,
    /// Granted but not imported: the whitelist gives more than the tool asks for (a warning).
    OverGranted,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Granted => "granted",
            Verdict::DeniedAtRuntime => "imported but not granted: every use is denied at run time",
            Verdict::StrictRefusal => "imported but not granted, and strict: refused at load",
            Verdict::OverGranted => "granted but not imported: remove the grant",
        })
    }
}

impl Verdict {
    /// Whether a reviewer should look at it (`--deny-warnings` fails on these).
    pub fn is_warning(self) -> bool {
        matches!(self, Verdict::StrictRefusal | Verdict::OverGranted)
    }
}

/// One grantable capability of the tool.
#[derive(Clone, Debug, Serialize)]
pub struct CapabilityReview {
    /// The capability.
    pub capability: Capability,
    /// The interfaces of it the component imports.
    pub imports: Vec<String>,
    /// What the whitelist grants, one entry per grant.
    pub grants: Vec<String>,
    /// How the two compare.
    pub verdict: Verdict,
}

/// The review of one whitelisted tool.
#[derive(Clone, Debug, Serialize)]
pub struct Review {
    /// The tool's name in the whitelist.
    pub tool: String,
    /// Whether the component is the one the whitelist pins.
    pub digest_matches: bool,
    /// Each grantable capability the tool imports or is granted.
    pub capabilities: Vec<CapabilityReview>,
    /// One line: `pure`, or what the tool can reach.
    pub risk: String,
}

impl Review {
    /// Whether anything deserves a reviewer's attention.
    pub fn has_warnings(&self) -> bool {
        !self.digest_matches || self.capabilities.iter().any(|c| c.verdict.is_warning())
    }
}

/// Reviews `inspection` (the component) against `tool` (its whitelist entry).
pub fn review(inspection: &Inspection, tool: &ToolPolicy) -> Review {
    let imports = inspection.imports.values().flatten().map(String::as_str);
    let capabilities = capabilities::match_grants(&tool.grants, imports)
        .into_iter()
        .filter_map(|m| {
            let verdict = if m.is_over_grant() {
                Verdict::OverGranted
            } else if m.is_ungranted() && tool.strict {
                Verdict::StrictRefusal
            } else if m.is_ungranted() {
                Verdict::DeniedAtRuntime
            } else if m.granted {
                Verdict::Granted
            } else {
                return None;
            };
            Some(CapabilityReview {
                capability: m.key.capability(),
                grants: describe_grants(m.key, tool),
                imports: m.imports,
                verdict,
            })
        })
        .collect();
    Review {
        tool: tool.name.clone(),
        digest_matches: inspection.sha256 == tool.sha256,
        capabilities,
        risk: risk(tool),
    }
}

/// What the whitelist grants `tool` under `key`, one line per grant.
fn describe_grants(key: GrantKey, tool: &ToolPolicy) -> Vec<String> {
    let grants = &tool.grants;
    match key {
        GrantKey::Fs => grants
            .fs
            .iter()
            .map(|g| format!("{} {} -> {}", mode(g.mode), g.host.display(), g.guest))
            .collect(),
        GrantKey::Env => grants.env.keys().map(|k| format!("env {k}")).collect(),
        GrantKey::Sockets => grants
            .sockets
            .iter()
            .map(|g| {
                let uses: Vec<_> = g
                    .uses
                    .iter()
                    .map(|u| format!("{u:?}").to_lowercase())
                    .collect();
                format!("{} {}", uses.join("+"), g.addr)
            })
            .collect(),
        GrantKey::Http => grants
            .http
            .iter()
            .map(ToString::to_string)
            .chain(grants.secrets.iter().map(|(origin, s)| {
                let insecure = if s.insecure {
                    " (insecure: plain HTTP)"
                } else {
                    ""
                };
                format!(
                    "secret {} for {origin} from ${}{insecure}",
                    s.header, s.from_env
                )
            }))
            .collect(),
        GrantKey::Kv => grants
            .kv
            .iter()
            .map(|kv| {
                format!(
                    "quota {}, up to {} keys, values up to {}",
                    kv.quota, kv.max_keys, kv.max_value
                )
            })
            .collect(),
    }
}

fn mode(mode: FsMode) -> &'static str {
    match mode {
        FsMode::ReadOnly => "ro",
        FsMode::ReadWrite => "rw",
    }
}

/// `pure`, or what the grants let the tool reach, most dangerous first.
fn risk(tool: &ToolPolicy) -> String {
    let grants = &tool.grants;
    let mut parts = Vec::new();
    let egress: Vec<_> = grants
        .sockets
        .iter()
        .map(|g| g.addr.to_string())
        .chain(grants.http.iter().map(|g| g.origin.to_string()))
        .collect();
    if !egress.is_empty() {
        parts.push(format!("network egress to {}", egress.join(", ")));
    }
    if !grants.secrets.is_empty() {
        let hosts: Vec<_> = grants.secrets.keys().map(ToString::to_string).collect();
        parts.push(format!("holds secret for {}", hosts.join(", ")));
    }
    let under = |m: FsMode| -> Vec<String> {
        grants
            .fs
            .iter()
            .filter(|g| g.mode == m)
            .map(|g| g.host.display().to_string())
            .collect()
    };
    let (writes, reads) = (under(FsMode::ReadWrite), under(FsMode::ReadOnly));
    if !writes.is_empty() {
        parts.push(format!("writes files under {}", writes.join(", ")));
    }
    if !reads.is_empty() {
        parts.push(format!("reads files under {}", reads.join(", ")));
    }
    if let Some(kv) = &grants.kv {
        parts.push(format!("stores data (up to {})", kv.quota));
    }
    if !grants.env.is_empty() {
        let names: Vec<_> = grants.env.keys().map(String::as_str).collect();
        parts.push(format!("sees environment {}", names.join(", ")));
    }
    if parts.is_empty() {
        "pure".into()
    } else {
        parts.join("; ")
    }
}
