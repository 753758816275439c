//! The plain-text part of the report email (also the console and Slack fallback).

use super::format::{self, money};
use super::{ReportView, Section};
use crate::domain::analytics::OrgSummary;
use std::fmt::Write;

fn section(out: &mut String, s: Section, o: &OrgSummary) {
    let _ = writeln!(out, "\n{}\n{}", s.title(), "-".repeat(s.title().len()));
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "  {k:<28} {v}");
    };
    match s {
        Section::Headline => {
            let t = &o.totals;
            kv("Gross", money(t.gross_cents));
            kv("Net", money(t.net_cents));
            kv("Fees", money(t.fees_cents));
            kv("Gifts", format::count(t.gifts));
            kv("Donors", format::count(t.donors));
            kv("Average gift", money(t.average_gift_cents));
            let busiest = o.gifts_per_day.iter().max_by_key(|d| d.gross_cents);
            if let Some(d) = busiest.filter(|d| d.gross_cents > 0) {
                kv(
                    "Best day",
                    format!("{} ({})", format::date(d.day), money(d.gross_cents)),
                );
            }
        }
        Section::Donors => {
            let l = &o.lifecycle;
            kv("New", format::count(l.new));
            kv("Returning", format::count(l.returning));
            kv("Reactivated", format::count(l.reactivated));
            kv("Lapsed", format::count(l.lapsed));
            kv("Lost", format::count(l.lost));
            kv("Retention", format::ratio(l.retention_rate));
        }
        Section::Campaigns => {
            if o.top_campaigns.is_empty() {
                kv("(none)", String::new());
            }
            for c in &o.top_campaigns {
                kv(
                    &format::name_or_id(&c.name, c.campaign_id),
                    format!(
                        "{} lifetime, {} in period",
                        money(c.raised_gross_cents),
                        money(c.window_gross_cents)
                    ),
                );
            }
        }
        Section::Recurring => {
            let r = &o.recurring;
            kv("Active plans", format::count(r.active_plans));
            kv("Recurring donors", format::count(r.recurring_donors));
            kv("Monthly recurring revenue", money(r.mrr_cents));
        }
        Section::Trends => {
            for (label, list) in [
                ("wow", &o.trends.week_over_week),
                ("mom", &o.trends.month_over_month),
            ] {
                for t in list.iter() {
                    kv(
                        &format!("{} ({label})", t.figure),
                        format!(
                            "{} vs {} ({})",
                            t.current,
                            t.previous,
                            format::change(t.change_pct)
                        ),
                    );
                }
            }
        }
        Section::Prospects => {
            for p in &o.top_prospects {
                kv(
                    &format::name_or_id(&p.name, p.supporter_id),
                    format!(
                        "RFM {} , {} lifetime",
                        p.rfm_total,
                        money(p.lifetime_gross_cents)
                    ),
                );
            }
            kv("Prospects in total", o.prospects_total.to_string());
        }
        Section::AtRisk => {
            for a in &o.at_risk {
                kv(
                    &format::name_or_id(&a.name, a.supporter_id),
                    format!("{} lifetime", money(a.lifetime_gross_cents)),
                );
            }
            kv("At risk in total", o.at_risk_total.to_string());
        }
        Section::Quality => kv("Quality score (0-100)", format!("{:.1}", o.quality.score)),
    }
}

pub fn render(v: &ReportView<'_>) -> String {
    let mut out = format!(
        "{}\nGenerated {}\n",
        v.title,
        format::datetime(v.generated_at)
    );
    for o in v.summaries {
        let head = format!("{} (organization {})", o.org_name, o.org_id);
        let _ = writeln!(
            out,
            "\n{head}\n{}\nPeriod {}",
            "=".repeat(head.chars().count().min(72)),
            format::period(&o.period)
        );
        for s in v.sections {
            section(&mut out, *s, o);
        }
    }
    if v.summaries.is_empty() {
        out.push_str("\nNo organizations.\n");
    }
    out
}
