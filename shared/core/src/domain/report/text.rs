//! The plain-text part of the report email (also the console and Slack fallback).

use super::figures;
use super::format::{self, money};
use super::{ReportView, Section};
use crate::domain::analytics::fep::FepReport;
use crate::domain::analytics::OrgSummary;
use std::fmt::Write;

fn section(out: &mut String, s: Section, o: &OrgSummary, fep: Option<&FepReport>) {
    let _ = writeln!(out, "\n{}\n{}", s.title(), "-".repeat(s.title().len()));
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "  {k:<32} {v}");
    };
    let figs = |kv: &mut dyn FnMut(&str, String), fs: Vec<figures::Figure>| {
        for f in fs {
            kv(&f.label, f.value().to_owned());
        }
    };
    match s {
        Section::Headline => {
            figs(&mut kv, figures::headline(o));
            let busiest = o.gifts_per_day.iter().max_by_key(|d| d.gross_cents);
            if let Some(d) = busiest.filter(|d| d.gross_cents > 0) {
                kv(
                    "Best day",
                    format!("{} ({})", format::date(d.day), money(d.gross_cents)),
                );
            }
        }
        Section::Donors => figs(&mut kv, figures::donors(o)),
        Section::Campaigns => {
            if o.top_campaigns.is_empty() {
                kv("(none)", String::new());
            }
            for c in &o.top_campaigns {
                kv(
                    &format::name_or_id(&c.name, c.campaign_id),
                    format!(
                        "{} raised in all, {} in the period",
                        money(c.raised_gross_cents),
                        money(c.window_gross_cents)
                    ),
                );
            }
        }
        Section::Recurring => figs(&mut kv, figures::recurring(o)),
        Section::Trends => {
            for f in figures::trends(o) {
                kv(&f.label, trend_value(&f));
            }
        }
        Section::Prospects => {
            for p in &o.top_prospects {
                kv(
                    &format::name_or_id(&p.name, p.supporter_id),
                    format!(
                        "RFM score {} of 15, {} given in all",
                        p.rfm_total,
                        money(p.lifetime_gross_cents)
                    ),
                );
            }
            kv("Prospects in total", format::count(o.prospects_total));
        }
        Section::AtRisk => {
            for a in &o.at_risk {
                kv(
                    &format::name_or_id(&a.name, a.supporter_id),
                    format!(
                        "{}; {} given in all",
                        figures::risk_reasons(&a.reasons),
                        money(a.lifetime_gross_cents)
                    ),
                );
            }
            kv("At risk in total", format::count(o.at_risk_total));
        }
        Section::Quality => figs(&mut kv, figures::quality(o)),
        Section::Fep => match fep {
            Some(r) => {
                kv("Compared", figures::fep_windows(r));
                figs(&mut kv, figures::fep(r));
            }
            None => figs(&mut kv, figures::fep_missing()),
        },
    }
}

/// A trend as one line: `$2,500.75 vs $2,000.00 (+25.0%)`.
pub fn trend_value(f: &figures::Figure) -> String {
    match f.values.as_slice() {
        [now, before, change] => format!("{now} vs {before} ({change})"),
        other => other.join(" "),
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
            section(&mut out, *s, o, v.fep_of(o.org_id));
        }
    }
    if v.summaries.is_empty() {
        out.push_str("\nNo organizations.\n");
    }
    out
}
