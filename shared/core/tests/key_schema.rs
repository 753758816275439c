//! The key schema holds across the workspace: no code outside `domain/keys.rs` spells a key
//! prefix, and the key table in docs/architecture.md is the one in the module.

mod common;

use classy_sync_core::domain::keys::KINDS;
use common::rust_files;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A string literal that starts like a key prefix: capitals, then `#`.
fn key_literal(line: &str) -> Option<&str> {
    let mut rest = line;
    while let Some(i) = rest.find('"') {
        let after = &rest[i + 1..];
        let caps = after
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(after.len());
        if caps > 0 && after[caps..].starts_with('#') {
            return Some(&after[..caps + 1]);
        }
        rest = after;
    }
    None
}

#[test]
fn no_code_outside_the_key_module_spells_a_key() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in ["shared", "functions/src", "cli/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut offenders = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // The module itself; tests (which build odd keys on purpose) and the testkit.
        if rel.ends_with("domain/keys.rs")
            || rel.contains("/tests/")
            || rel.starts_with("shared/testkit")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            if let Some(lit) = key_literal(line) {
                offenders.push(format!("{rel}:{}: {lit}", n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "keys formatted outside domain/keys.rs:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_documented_key_table_is_the_module() {
    let doc = std::fs::read_to_string(workspace().join("docs/architecture.md")).unwrap();
    let start = doc
        .find("| PK | SK | what |")
        .expect("key table in docs/architecture.md");
    let documented: BTreeSet<(String, String)> = doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            )
        })
        .collect();
    let module: BTreeSet<(String, String)> = KINDS
        .iter()
        .map(|k| (k.pk.to_owned(), k.sk.to_owned()))
        .collect();
    assert_eq!(documented, module);
}
