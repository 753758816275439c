//! `classy-sync report add --preset weekly`: the preset fills the sections (with the FEP
//! figures), the period and the schedule; what is given on the command line wins; a report
//! without a preset still needs --schedule; and `report preview --sections fep` prints the
//! FEP figures in words.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_classy-sync");

fn cli(data: &Path) -> Command {
    classy_sync_tests::cli::local(BIN, data)
}

fn run(c: &mut Command) -> (bool, String) {
    let out: Output = c.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ok(c: &mut Command) -> String {
    let (success, out) = run(c);
    assert!(success, "{out}");
    out
}

fn definition(data: &Path, id: &str) -> Value {
    ok(cli(data).args(["report", "list", "--json"]))
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["definition"]["id"] == id)
        .unwrap_or_else(|| panic!("no report {id}"))["definition"]
        .clone()
}

#[test]
fn the_weekly_preset_defines_a_report_with_the_fep_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(cli(data)
        .args([
            "org",
            "add",
            "9001",
            "--name",
            "Preset Org",
            "--client-id",
            "preset-app",
            "--no-verify",
        ])
        .env("CLASSY_CLIENT_SECRET", "preset-secret-0123456789"));

    let out = ok(cli(data).args([
        "report",
        "add",
        "board",
        "--preset",
        "weekly",
        "--org",
        "9001",
        "--timezone",
        "America/New_York",
        "--email",
        "board@example.org",
    ]));
    assert!(out.contains("report board added; next run"), "{out}");
    let d = definition(data, "board");
    assert_eq!(
        d["sections"],
        serde_json::json!([
            "headline",
            "fep",
            "donors",
            "recurring",
            "trends",
            "at_risk"
        ])
    );
    assert_eq!(d["period"], "7d");
    assert_eq!(d["schedule"], "0 8 * * MON");
    assert_eq!(d["timezone"], "America/New_York");

    // The command line wins over the preset.
    ok(cli(data).args([
        "report",
        "add",
        "board-monthly",
        "--preset",
        "weekly",
        "--org",
        "9001",
        "--period",
        "30d",
        "--schedule",
        "0 7 1 * *",
        "--sections",
        "headline,fep",
        "--email",
        "board@example.org",
    ]));
    let d = definition(data, "board-monthly");
    assert_eq!(d["sections"], serde_json::json!(["headline", "fep"]));
    assert_eq!(
        (d["period"].as_str(), d["schedule"].as_str()),
        (Some("30d"), Some("0 7 1 * *"))
    );

    let (success, out) = run(cli(data).args([
        "report",
        "add",
        "x",
        "--org",
        "9001",
        "--email",
        "a@example.org",
    ]));
    assert!(!success && out.contains("--schedule is required"), "{out}");
    let (success, out) = run(cli(data).args([
        "report",
        "add",
        "x",
        "--preset",
        "monthly",
        "--org",
        "9001",
        "--email",
        "a@example.org",
    ]));
    assert!(
        !success && out.contains("unknown preset") && out.contains("weekly"),
        "{out}"
    );

    let text = ok(cli(data).args([
        "report",
        "preview",
        "9001",
        "--format",
        "text",
        "--sections",
        "fep",
    ]));
    for want in [
        "Fundraising effectiveness (FEP)",
        "Donor retention",
        "Dollar retention",
        "LYBUNT (gave in",
        "SYBUNT (gave before",
        "Monthly recurring revenue",
    ] {
        assert!(text.contains(want), "preview lacks {want}:\n{text}");
    }
}
