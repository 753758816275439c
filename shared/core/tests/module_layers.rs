//! Inside the core, the direction Cargo cannot hold between modules of one crate: the domain
//! uses neither the ports nor the engine, and the ports do not use the engine.

mod common;

use common::rust_files;
use std::path::Path;

/// Every line under `src/<module>` that names one of `forbidden` (`crate::ports`, ...).
fn offenders(module: &str, forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join(module), &mut files);
    assert!(!files.is_empty(), "no sources under src/{module}");
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                out.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn the_domain_uses_neither_ports_nor_engine() {
    let found = offenders("domain", &["crate::ports", "crate::engine"]);
    assert!(
        found.is_empty(),
        "domain reaches outward:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_ports_do_not_use_the_engine() {
    let found = offenders("ports", &["crate::engine"]);
    assert!(
        found.is_empty(),
        "ports reach into the engine:\n{}",
        found.join("\n")
    );
}
