//! `harness audit COMPONENT.wasm`.

use std::path::Path;
use std::process::ExitCode;

use harness_host::inspect::{self, Functions};

/// Prints the review of one component.
pub fn run(component: &Path, as_json: bool) -> ExitCode {
    let bytes = match std::fs::read(component) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("harness: cannot read {}: {e}", component.display());
            return ExitCode::from(super::EXIT_LOAD);
        }
    };
    let report = match inspect::inspect(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("harness: {}: {e}", component.display());
            return ExitCode::from(super::EXIT_LOAD);
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("reports serialize")
        );
        return ExitCode::SUCCESS;
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
    ExitCode::SUCCESS
}
