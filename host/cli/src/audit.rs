//! `harness audit COMPONENT.wasm`.

use std::path::{Path, PathBuf};

use harness_agent::config::Config;
use harness_sandbox::inspect::review::{self, Review};
use harness_sandbox::inspect::{self, Functions};
use harness_sandbox::signing::Verdict;

use crate::exit::Exit;

/// Review the component as a whitelisted tool.
pub struct ReviewAs {
    /// The whitelist.
    pub policy: PathBuf,
    /// The tool's name in it.
    pub tool: String,
    /// Fail when the review has warnings.
    pub deny_warnings: bool,
}

/// Prints what a reviewer needs about one component, and optionally its review as a tool.
pub fn run(component: &Path, as_json: bool, review_as: Option<&ReviewAs>) -> Exit {
    let bytes = match std::fs::read(component) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("harness: cannot read {}: {e}", component.display());
            return Exit::Load;
        }
    };
    let report = match inspect::inspect(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("harness: {}: {e}", component.display());
            return Exit::Load;
        }
    };
    let review = match review_as.map(|r| review_tool(&report, r)).transpose() {
        Ok(review) => review,
        Err(message) => {
            eprintln!("harness: {message}");
            return Exit::Load;
        }
    };
    let verdict = match (&review, review_as) {
        (Some((review, signature)), Some(r))
            if r.deny_warnings && (review.has_warnings() || signature.is_err()) =>
        {
            Exit::Warnings
        }
        _ => Exit::Success,
    };
    if as_json {
        let mut json = serde_json::to_value(&report).expect("reports serialize");
        if let Some((review, signature)) = &review {
            json["review"] = serde_json::to_value(review).expect("reviews serialize");
            json["review"]["signature"] = match signature {
                Ok((verdict, _)) => serde_json::to_value(verdict).expect("verdicts serialize"),
                Err(refused) => serde_json::json!({"status": "refused", "error": refused}),
            };
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("JSON prints")
        );
        return verdict;
    }
    println!(
        "component: {}\nsha256:    {}\n",
        component.display(),
        report.sha256
    );
    println!("imports by capability:");
    for (capability, names) in &report.imports {
        println!("  {capability}: {}", names.join(", "));
    }
    if report.refused_imports.is_empty() {
        println!("  (every import is one the host provides)");
    } else {
        println!("  REFUSED at load: {}", report.refused_imports.join(", "));
    }
    println!("\nfunctions:");
    match &report.functions {
        Functions::Offered(functions) => {
            for f in functions {
                println!("  {}  {}", f.name, f.description.as_deref().unwrap_or(""));
                println!("      parameters: {}", f.parameters);
                println!("      result:     {}", f.result);
                if let Some(e) = &f.error {
                    println!("      error:      {e}");
                }
            }
        }
        Functions::Refused(why) => println!("  REFUSED at load: {why}"),
    }
    println!("\nWIT world:\n{}", report.wit);
    if let Some((review, signature)) = &review {
        print_review(review);
        match signature {
            Ok((_, words)) => println!("  signature: {words}"),
            Err(refused) => println!("  WARNING signature: {refused}"),
        }
    }
    verdict
}

/// The review of the component as the tool, and the tool's signature (who signed it, or why the
/// host refuses it).
type ToolReview = (Review, Result<(Verdict, String), String>);

fn review_tool(report: &inspect::Inspection, review_as: &ReviewAs) -> Result<ToolReview, String> {
    let config = Config::load(&review_as.policy).map_err(|e| e.to_string())?;
    let policy = config.policy();
    let tool = crate::load::find_tool(policy, &review_as.tool).map_err(|e| e.to_string())?;
    let signature = harness_sandbox::check_signature(policy, tool)
        .map(|verdict| {
            let words = crate::supply::describe(&verdict, tool);
            (verdict, words)
        })
        .map_err(|e| e.to_string());
    Ok((review::review(report, tool), signature))
}

fn print_review(review: &Review) {
    println!("review as tool `{}`:", review.tool);
    if !review.digest_matches {
        println!("  WARNING digest: this file is not the one the whitelist pins");
    }
    for c in &review.capabilities {
        let mark = if c.verdict.is_warning() {
            "WARNING "
        } else {
            ""
        };
        println!(
            "  {mark}{}: {}; imports [{}]; grants [{}]",
            c.capability,
            c.verdict,
            c.imports.join(", "),
            c.grants.join(", ")
        );
    }
    println!("  risk: {}", review.risk);
}
