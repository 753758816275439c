//! `classy-sync usage`: runs, records, Classy and Mailchimp calls, errors and duration
//! percentiles per organization×operation×subject and per operation, and each
//! organization's Classy calls per day against the application's budget of 1,800 a minute.

use crate::output::{print_json, table, thousands};
use crate::runtime;
use anyhow::Result;
use clap::Args;
use classy_sync_core::domain::usage::{BusiestMinute, UsagePeriod, UsageRow, BUDGET_PER_MINUTE};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only this organization.
    #[arg(long = "org")]
    pub org: Option<u64>,
    /// How far back: `<N>d` or `<N>h`, at most 90d (records are kept 90 days).
    #[arg(long, default_value = "30d", value_parser = parse_period)]
    pub period: UsagePeriod,
    #[arg(long)]
    pub json: bool,
}

fn parse_period(s: &str) -> Result<UsagePeriod, String> {
    s.parse()
        .map_err(|e: classy_sync_core::domain::usage::PeriodError| e.to_string())
}

fn count(v: Option<u64>) -> String {
    v.map(thousands).unwrap_or_else(|| "-".into())
}

fn row_cells(r: &UsageRow) -> Vec<String> {
    vec![
        thousands(r.runs),
        count(r.records),
        count(r.classy_calls),
        count(r.mailchimp_calls),
        thousands(r.errors),
        format!("{:.1}%", r.error_rate * 100.0),
        count(r.duration_ms.p50),
        count(r.duration_ms.p95),
        count(r.duration_ms.p99),
    ]
}

/// The busiest minute and its calls (`at_least..at_most` when the bounds differ).
fn busiest(b: &Option<BusiestMinute>) -> (String, String) {
    match b {
        Some(b) if b.at_least == b.at_most => (b.minute.clone(), thousands(b.at_most)),
        Some(b) => (
            b.minute.clone(),
            format!("{}..{}", thousands(b.at_least), thousands(b.at_most)),
        ),
        None => ("-".into(), "-".into()),
    }
}

fn calls_cell(calls: u64, unknown: u64) -> String {
    if unknown > 0 {
        format!("{} (+{unknown} runs unknown)", thousands(calls))
    } else {
        thousands(calls)
    }
}

const COLUMNS: [&str; 9] = [
    "runs",
    "records",
    "classy calls",
    "mailchimp calls",
    "errors",
    "error rate",
    "p50 ms",
    "p95 ms",
    "p99 ms",
];

pub async fn run(target: &runtime::Target, args: UsageArgs) -> Result<ExitCode> {
    let data = runtime::open(target).await?.data();
    let to_ms = data.clock.now().timestamp_millis();
    let from_ms = to_ms - args.period.secs * 1000;
    let usage = data.usage(args.org, from_ms, to_ms).await?;
    if args.json {
        print_json(&usage)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("usage from {} to {}", usage.from, usage.to);
    let mut header = vec!["org", "name", "operation", "entity/plugin"];
    header.extend(COLUMNS);
    let mut t = table(&header);
    for r in &usage.by_org {
        let mut cells = vec![
            r.org.map(|o| o.to_string()).unwrap_or_default(),
            r.org_name.clone().unwrap_or_default(),
            r.operation.to_string(),
            r.subject.clone().unwrap_or_default(),
        ];
        cells.extend(row_cells(r));
        t.add_row(cells);
    }
    println!("{t}");
    let mut header = vec!["operation"];
    header.extend(COLUMNS);
    let mut t = table(&header);
    for r in &usage.by_operation {
        let mut cells = vec![r.operation.to_string()];
        cells.extend(row_cells(r));
        t.add_row(cells);
    }
    println!("{t}");
    let mut t = table(&[
        "org",
        "day (UTC)",
        "classy calls",
        "share of daily budget",
        "busiest minute",
        "calls in it",
    ]);
    for d in &usage.classy_calls_per_day {
        let (minute, calls) = busiest(&d.busiest_minute);
        t.add_row(vec![
            d.org.to_string(),
            d.day.clone(),
            calls_cell(d.classy_calls, d.runs_without_counts),
            format!("{:.4}%", d.budget_share * 100.0),
            minute,
            calls,
        ]);
    }
    println!("{t}");
    let mut t = table(&[
        "application",
        "day (UTC)",
        "orgs",
        "classy calls",
        "share of daily budget",
        "busiest minute",
        "calls in it",
    ]);
    for d in &usage.classy_calls_per_application_day {
        let (minute, calls) = busiest(&d.busiest_minute);
        t.add_row(vec![
            d.application.clone(),
            d.day.clone(),
            d.orgs.len().to_string(),
            calls_cell(d.classy_calls, d.runs_without_counts),
            format!("{:.4}%", d.budget_share * 100.0),
            minute,
            calls,
        ]);
    }
    println!("{t}");
    println!(
        "budget: {} Classy calls a minute per application ({} a day); \"-\": not counted; \
         the busiest minute is bounded from run intervals (see docs/usage.md)",
        thousands(BUDGET_PER_MINUTE),
        thousands(usage.budget_per_day)
    );
    if usage.by_org.iter().any(|r| r.runs_without_counts > 0) {
        println!("some runs did not know their calls (runs_without_counts in --json); their calls are left out of the sums");
    }
    Ok(ExitCode::SUCCESS)
}
