//! `classy-sync analytics ...` and `org compare`: tables on a terminal, `--json` for machines.

use crate::cli::{AnalyticsCommand, AnalyticsOpts};
use crate::output::{print_json, table, thousands};
use crate::runtime;
use anyhow::{bail, Result};
use classy_sync_core::domain::analytics::donors::{DonorReport, TierThresholds};
use classy_sync_core::domain::analytics::trends::{Direction, Trends};
use classy_sync_core::domain::analytics::{AnalyticsConfig, FepOptions, OrgSummary};
use classy_sync_core::domain::{OrgId, Timestamp};
use classy_sync_core::engine::Datastore;
use serde_json::json;
use std::process::ExitCode;

/// `1,234.56` from cents.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", thousands(c / 100), c % 100)
}

fn date(unix: i64) -> String {
    Timestamp::from_unix(unix).0.format("%Y-%m-%d").to_string()
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}%"))
}

fn config(opts: &AnalyticsOpts) -> Result<AnalyticsConfig> {
    Ok(AnalyticsConfig {
        tiers: TierThresholds::from_dollars(&opts.tiers)
            .map_err(|e| anyhow::anyhow!("--tiers: {e}"))?,
        top: opts.top,
    })
}

fn now(opts: &AnalyticsOpts) -> Timestamp {
    opts.as_of.unwrap_or_else(|| Timestamp(chrono::Utc::now()))
}

/// The organization given, or every onboarded one.
async fn orgs(data: &Datastore, org: Option<OrgId>) -> Result<Vec<OrgId>> {
    match org {
        Some(o) => {
            data.get_org(o).await?;
            Ok(vec![o])
        }
        None => {
            let all: Vec<OrgId> = data.list_orgs().await?.iter().map(|o| o.id).collect();
            if all.is_empty() {
                bail!("no organizations onboarded (see `classy-sync org add`)");
            }
            Ok(all)
        }
    }
}

/// One JSON value for one organization, an array for several.
fn print_many<T: serde::Serialize>(items: &[T], single: bool) -> Result<()> {
    if single {
        print_json(&items[0])
    } else {
        print_json(&items)
    }
}

pub async fn run(target: &runtime::Target, cmd: AnalyticsCommand) -> Result<ExitCode> {
    let data = &runtime::open(target).await?.data();
    match cmd {
        AnalyticsCommand::Donors { org_id, opts } => {
            let cfg = config(&opts)?;
            let at = now(&opts);
            let window = opts.period.resolve(at);
            let mut out = Vec::new();
            for org in orgs(data, org_id).await? {
                let (recurring, failing) = data.recurring(org, window.end).await?;
                let report = data.donor_report(org, window, &cfg, failing).await?;
                out.push((org, report, recurring));
            }
            if opts.json {
                let values: Vec<_> = out
                    .iter()
                    .map(|(org, r, rec)| {
                        json!({"org_id": org, "period": opts.period.to_string(), "window": r.window,
                            "totals": r.totals, "lifecycle": r.lifecycle, "tiers": r.tiers,
                            "recurring": rec, "top_prospects": r.top_prospects,
                            "prospects_total": r.prospects_total, "at_risk": r.at_risk,
                            "at_risk_total": r.at_risk_total})
                    })
                    .collect();
                print_many(&values, org_id.is_some())?;
            } else {
                for (org, r, rec) in &out {
                    print_donors(*org, &opts, r, rec);
                }
            }
        }
        AnalyticsCommand::Campaigns { org_id, opts } => {
            let cfg = config(&opts)?;
            let at = now(&opts);
            let window = opts.period.resolve(at);
            let mut out = Vec::new();
            for org in orgs(data, org_id).await? {
                let (_, failing) = data.recurring(org, window.end).await?;
                let donors = data.donor_report(org, window, &cfg, failing).await?;
                let stats = data
                    .campaign_report(org, window.end, &donors.campaign_gross_in_window)
                    .await?;
                out.push(
                    json!({"org_id": org, "period": opts.period.to_string(), "campaigns": stats}),
                );
            }
            if opts.json {
                print_many(&out, org_id.is_some())?;
            } else {
                for v in &out {
                    let stats: Vec<classy_sync_core::domain::analytics::CampaignStats> =
                        serde_json::from_value(v["campaigns"].clone())?;
                    println!(
                        "Organization {} — campaigns (period {} for the period column)",
                        v["org_id"], opts.period
                    );
                    let mut t = table(&[
                        "rank",
                        "id",
                        "name",
                        "status",
                        "raised gross",
                        "raised net",
                        "donors",
                        "gifts",
                        "avg gift",
                        "% of goal",
                        "per day",
                        "projected",
                        "in period",
                    ]);
                    for s in &stats {
                        t.add_row(vec![
                            s.rank.to_string(),
                            s.campaign_id.to_string(),
                            s.name.clone().unwrap_or_default(),
                            s.status.clone().unwrap_or_default(),
                            money(s.raised_gross_cents),
                            money(s.raised_net_cents),
                            thousands(s.donors),
                            thousands(s.gifts),
                            money(s.average_gift_cents),
                            pct(s.percent_of_goal),
                            money(s.daily_velocity_cents),
                            s.projected_total_cents.map_or("-".into(), money),
                            money(s.window_gross_cents),
                        ]);
                    }
                    println!("{t}");
                }
            }
        }
        AnalyticsCommand::Trends { org_id, opts } => {
            let cfg = config(&opts)?;
            let at = now(&opts);
            let window = opts.period.resolve(at);
            let mut out = Vec::new();
            for org in orgs(data, org_id).await? {
                let r = data
                    .donor_report(org, window, &cfg, Default::default())
                    .await?;
                out.push((org, r.trends));
            }
            if opts.json {
                let values: Vec<_> = out
                    .iter()
                    .map(|(org, t)| json!({"org_id": org, "as_of": window.end, "trends": t}))
                    .collect();
                print_many(&values, org_id.is_some())?;
            } else {
                for (org, t) in &out {
                    println!("Organization {org} — trends as of {}", date(window.end));
                    print_trends(t);
                }
            }
        }
        AnalyticsCommand::Donor {
            supporter_id,
            org_id,
            opts,
        } => {
            let cfg = config(&opts)?;
            let org = match org_id {
                Some(o) => o,
                None => {
                    let all = orgs(data, None).await?;
                    if all.len() > 1 {
                        bail!("several organizations are onboarded: give the organization id after the supporter id");
                    }
                    all[0]
                }
            };
            let j = data
                .donor_journey(org, supporter_id, now(&opts).unix(), &cfg)
                .await?;
            if opts.json {
                print_json(&j)?;
            } else {
                println!(
                    "Supporter {} {} — {}, tier {}, lifetime {}{}",
                    j.supporter_id,
                    j.name.clone().unwrap_or_default(),
                    j.status_now,
                    j.tier.clone().unwrap_or_else(|| "-".into()),
                    money(j.lifetime_gross_cents),
                    j.rfm.map_or(String::new(), |r| format!(
                        ", RFM {}{}{}",
                        r.recency, r.frequency, r.monetary
                    ))
                );
                let mut t = table(&[
                    "date",
                    "transaction",
                    "status",
                    "gross",
                    "campaign",
                    "plan",
                    "segment",
                    "lifetime",
                ]);
                for g in &j.gifts {
                    t.add_row(vec![
                        date(g.date),
                        g.transaction_id.to_string(),
                        g.status.clone().unwrap_or_default(),
                        money(g.gross_cents),
                        g.campaign_id.map_or("-".into(), |c| c.to_string()),
                        g.recurring_plan_id.map_or("-".into(), |c| c.to_string()),
                        g.segment.clone().unwrap_or_else(|| "-".into()),
                        money(g.lifetime_gross_cents_after),
                    ]);
                }
                println!("{t}");
                if !j.plans.is_empty() {
                    let mut p = table(&[
                        "plan",
                        "status",
                        "amount",
                        "frequency",
                        "started",
                        "canceled",
                    ]);
                    for x in &j.plans {
                        p.add_row(vec![
                            x.plan_id.to_string(),
                            x.status.clone().unwrap_or_default(),
                            money(x.amount_cents),
                            x.frequency.clone().unwrap_or_default(),
                            x.started_at.map_or("-".into(), date),
                            x.canceled_at.map_or("-".into(), date),
                        ]);
                    }
                    println!("{p}");
                }
            }
        }
        AnalyticsCommand::Summary { org_id, opts } => {
            let cfg = config(&opts)?;
            let mut out = Vec::new();
            for org in orgs(data, org_id).await? {
                out.push(
                    data.summarize_with(org, &opts.period, now(&opts), &cfg)
                        .await?,
                );
            }
            if opts.json {
                print_many(&out, org_id.is_some())?;
            } else {
                for s in &out {
                    print_summary(s);
                }
            }
        }
        AnalyticsCommand::Fep { org_id, opts } => {
            let options = FepOptions {
                limit: opts.limit,
                fiscal_year_start_month: opts.fiscal_year_start,
            };
            let at = opts.as_of.unwrap_or_else(|| Timestamp(chrono::Utc::now()));
            let mut out = Vec::new();
            for org in orgs(data, org_id).await? {
                out.push(data.fep_report(org, &opts.period, at, &options).await?);
            }
            if opts.json {
                print_many(&out, org_id.is_some())?;
            } else {
                for r in &out {
                    super::fep::print(r);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_donors(
    org: OrgId,
    opts: &AnalyticsOpts,
    r: &DonorReport,
    rec: &classy_sync_core::domain::analytics::recurring::Recurring,
) {
    println!(
        "Organization {org} — donors, period {} ({} to {})",
        opts.period,
        date(r.window.start),
        date(r.window.end - 1)
    );
    let t = &r.totals;
    let l = &r.lifecycle;
    let mut s = table(&["figure", "value"]);
    for (k, v) in [
        ("gross", money(t.gross_cents)),
        ("net", money(t.net_cents)),
        ("fees", money(t.fees_cents)),
        ("gifts", thousands(t.gifts)),
        ("donors", thousands(t.donors)),
        ("average gift", money(t.average_gift_cents)),
        ("new donors", thousands(l.new)),
        ("returning donors", thousands(l.returning)),
        ("reactivated donors", thousands(l.reactivated)),
        ("lapsed (12–24 months)", thousands(l.lapsed)),
        ("lost (> 24 months)", thousands(l.lost)),
        (
            "retention",
            format!(
                "{} ({} of {})",
                pct(l.retention_rate.map(|x| x * 100.0)),
                l.retained,
                l.previous_period_donors
            ),
        ),
        ("recurring donors", thousands(rec.recurring_donors)),
        ("active plans", thousands(rec.active_plans)),
        ("monthly recurring revenue", money(rec.mrr_cents)),
    ] {
        s.add_row(vec![k.to_string(), v]);
    }
    println!("{s}");
    let mut tiers = table(&["tier", "from lifetime", "donors", "lifetime gross"]);
    for x in &r.tiers {
        tiers.add_row(vec![
            x.tier.clone(),
            money(x.min_lifetime_gross_cents),
            thousands(x.donors),
            money(x.lifetime_gross_cents),
        ]);
    }
    println!("{tiers}");
    println!(
        "Top major-gift prospects ({} with RFM ≥ 10)",
        r.prospects_total
    );
    let mut p = table(&[
        "supporter",
        "name",
        "RFM",
        "lifetime",
        "gifts",
        "largest",
        "last gift",
    ]);
    for x in &r.top_prospects {
        p.add_row(vec![
            x.supporter_id.to_string(),
            x.name.clone().unwrap_or_default(),
            format!(
                "{}{}{} ({})",
                x.rfm.recency, x.rfm.frequency, x.rfm.monetary, x.rfm_total
            ),
            money(x.lifetime_gross_cents),
            x.gifts.to_string(),
            money(x.largest_gift_cents),
            date(x.last_gift_at),
        ]);
    }
    println!("{p}");
    println!("At risk of lapsing ({} in all)", r.at_risk_total);
    let mut a = table(&[
        "supporter",
        "name",
        "why",
        "lifetime",
        "gifts",
        "days since last gift",
    ]);
    for x in &r.at_risk {
        let why: Vec<String> = x
            .reasons
            .iter()
            .map(|r| {
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        a.add_row(vec![
            x.supporter_id.to_string(),
            x.name.clone().unwrap_or_default(),
            why.join(", "),
            money(x.lifetime_gross_cents),
            x.gifts.to_string(),
            x.days_since_last_gift.map_or("-".into(), |d| d.to_string()),
        ]);
    }
    println!("{a}");
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Up => "↑ up",
        Direction::Down => "↓ down",
        Direction::Flat => "→ flat",
    }
}

fn print_trends(t: &Trends) {
    let mut table = table(&[
        "window",
        "figure",
        "current",
        "previous",
        "change",
        "direction",
    ]);
    for (label, list) in [
        ("week over week", &t.week_over_week),
        ("month over month", &t.month_over_month),
    ] {
        for x in list {
            let show = |v: i64| {
                if x.figure.ends_with("_cents") {
                    money(v)
                } else {
                    thousands(v.max(0) as u64)
                }
            };
            table.add_row(vec![
                label.to_string(),
                x.figure.trim_end_matches("_cents").to_string(),
                show(x.current),
                show(x.previous),
                pct(x.change_pct),
                arrow(x.direction).to_string(),
            ]);
        }
    }
    println!("{table}");
}

fn print_summary(s: &OrgSummary) {
    println!(
        "{} ({}) — period {} ({} to {}), quality {:.1}/100",
        s.org_name,
        s.org_id,
        s.period.label,
        date(s.period.start),
        date(s.period.end - 1),
        s.quality.score
    );
    let mut t = table(&[
        "gross",
        "net",
        "fees",
        "gifts",
        "donors",
        "new",
        "retention",
        "MRR",
        "at risk",
    ]);
    t.add_row(vec![
        money(s.totals.gross_cents),
        money(s.totals.net_cents),
        money(s.totals.fees_cents),
        thousands(s.totals.gifts),
        thousands(s.totals.donors),
        thousands(s.lifecycle.new),
        pct(s.lifecycle.retention_rate.map(|x| x * 100.0)),
        money(s.recurring.mrr_cents),
        thousands(s.at_risk_total),
    ]);
    println!("{t}");
    print_trends(&s.trends);
}

/// `org compare`: one column per organization, plus the totals.
pub async fn compare(
    data: &Datastore,
    org_ids: &[OrgId],
    opts: &AnalyticsOpts,
) -> Result<ExitCode> {
    let cfg = config(opts)?;
    let c = data.compare(org_ids, &opts.period, now(opts), &cfg).await?;
    if opts.json {
        print_json(&c)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut header: Vec<String> = vec!["figure".into()];
    header.extend(
        c.summaries
            .iter()
            .map(|s| format!("{} ({})", s.org_name, s.org_id)),
    );
    header.push("all".into());
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = table(&refs);
    type Getter = fn(&OrgSummary) -> String;
    let rows: [(&str, Getter, String); 9] = [
        (
            "gross",
            |s| money(s.totals.gross_cents),
            money(c.totals.gross_cents),
        ),
        (
            "net",
            |s| money(s.totals.net_cents),
            money(c.totals.net_cents),
        ),
        (
            "fees",
            |s| money(s.totals.fees_cents),
            money(c.totals.fees_cents),
        ),
        (
            "gifts",
            |s| thousands(s.totals.gifts),
            thousands(c.totals.gifts),
        ),
        (
            "donors",
            |s| thousands(s.totals.donors),
            thousands(c.totals.donors),
        ),
        (
            "new donors",
            |s| thousands(s.lifecycle.new),
            thousands(c.totals.new_donors),
        ),
        (
            "retention",
            |s| pct(s.lifecycle.retention_rate.map(|x| x * 100.0)),
            "-".into(),
        ),
        (
            "MRR",
            |s| money(s.recurring.mrr_cents),
            money(c.totals.mrr_cents),
        ),
        ("quality", |s| format!("{:.1}", s.quality.score), "-".into()),
    ];
    for (name, get, total) in rows {
        let mut row = vec![name.to_string()];
        row.extend(c.summaries.iter().map(get));
        row.push(total);
        t.add_row(row);
    }
    println!("Period {} as of {}", opts.period, date(now(opts).unix()));
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
