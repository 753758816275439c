//! `classy-sync quality report`: findings, duplicates and scores. Read-only.

use crate::cli::QualityCommand;
use crate::output::{print_json, table, thousands};
use crate::runtime;
use anyhow::{bail, Result};
use classy_sync_core::domain::quality::rules::ALL_RULES;
use classy_sync_core::domain::Timestamp;
use std::process::ExitCode;

pub async fn run(target: &runtime::Target, cmd: QualityCommand) -> Result<ExitCode> {
    let data = &runtime::open(target).await?.data();
    let QualityCommand::Report {
        org_id,
        limit,
        as_of,
        json,
    } = cmd;
    let orgs = match org_id {
        Some(o) => vec![o],
        None => data.list_orgs().await?.iter().map(|o| o.id).collect(),
    };
    if orgs.is_empty() {
        bail!("no organizations onboarded (see `classy-sync org add`)");
    }
    let now = as_of
        .unwrap_or_else(|| Timestamp(chrono::Utc::now()))
        .unix();
    let report = data.quality_report(&orgs, now, limit).await?;
    if json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for o in &report.orgs {
        let checked: Vec<String> = o
            .score
            .checked
            .iter()
            .map(|(e, n)| format!("{n} {e}"))
            .collect();
        println!(
            "Organization {} — quality {:.1}/100 ({} checked)",
            o.org_id,
            o.score.score,
            checked.join(", ")
        );
        let mut t = table(&[
            "rule",
            "records",
            "of",
            "weight",
            "points lost",
            "suggested fix",
        ]);
        for c in &o.score.costs {
            t.add_row(vec![
                c.rule.name().to_string(),
                thousands(c.records),
                thousands(c.checked),
                format!("{:.0}", c.weight),
                format!("{:.1}", c.points_lost),
                c.rule.suggested_fix().to_string(),
            ]);
        }
        println!("{t}");
        if !o.findings.is_empty() {
            println!("Findings (at most {limit} per rule)");
            let mut f = table(&["rule", "record", "fields", "detail"]);
            for rule in ALL_RULES {
                for x in o.findings.iter().filter(|x| x.rule == rule) {
                    f.add_row(vec![
                        rule.name().to_string(),
                        format!("{} {}", x.entity, x.id),
                        x.fields.join(", "),
                        x.detail.clone(),
                    ]);
                }
            }
            println!("{f}");
        }
        if !o.duplicate_groups.is_empty() {
            println!("Duplicate groups ({} in all)", o.duplicate_groups_total);
            let mut d = table(&["kind", "key", "supporters"]);
            for g in &o.duplicate_groups {
                let ids: Vec<String> = g.members.iter().map(|m| m.1.to_string()).collect();
                d.add_row(vec![format!("{:?}", g.kind), g.key.clone(), ids.join(", ")]);
            }
            println!("{d}");
        }
    }
    if report.cross_org_duplicates_total > 0 {
        println!(
            "Same email in several organizations: {} (informational)",
            report.cross_org_duplicates_total
        );
        let mut d = table(&["email", "organization:supporter"]);
        for g in &report.cross_org_duplicates {
            let m: Vec<String> = g.members.iter().map(|(o, s)| format!("{o}:{s}")).collect();
            d.add_row(vec![g.key.clone(), m.join(", ")]);
        }
        println!("{d}");
    }
    Ok(ExitCode::SUCCESS)
}
