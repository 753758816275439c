//! The figures a report shows, as the words and formatted values a reader sees. Every
//! renderer (HTML, text, Slack) takes its figures from here, so the email and the Slack
//! message carry the same ones, and no field name (`gross_cents`) reaches a reader.

use super::format::{self, money};
use crate::domain::analytics::donors::RiskReason;
use crate::domain::analytics::fep::{FepReport, Flow, LapsedGroup};
use crate::domain::analytics::trends::Trend;
use crate::domain::analytics::OrgSummary;

/// One figure: a label in words and its formatted value(s) (a trend has three: this
/// period, the previous one, the change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub label: String,
    pub values: Vec<String>,
}

impl Figure {
    pub fn new(label: impl Into<String>, value: String) -> Self {
        Figure {
            label: label.into(),
            values: vec![value],
        }
    }

    /// The first value (the only one but for trends).
    pub fn value(&self) -> &str {
        self.values.first().map_or("", String::as_str)
    }
}

/// Gross, net, fees, gifts, donors, average gift.
pub fn headline(o: &OrgSummary) -> Vec<Figure> {
    let t = &o.totals;
    vec![
        Figure::new("Gross raised", money(t.gross_cents)),
        Figure::new("Net raised (after fees)", money(t.net_cents)),
        Figure::new("Fees", money(t.fees_cents)),
        Figure::new("Gifts", format::count(t.gifts)),
        Figure::new("Donors", format::count(t.donors)),
        Figure::new("Average gift", money(t.average_gift_cents)),
    ]
}

pub fn donors(o: &OrgSummary) -> Vec<Figure> {
    let l = &o.lifecycle;
    vec![
        Figure::new("New donors", format::count(l.new)),
        Figure::new("Returning donors", format::count(l.returning)),
        Figure::new("Reactivated donors", format::count(l.reactivated)),
        Figure::new("Lapsed donors", format::count(l.lapsed)),
        Figure::new("Lost donors", format::count(l.lost)),
        Figure::new("Donor retention", format::ratio(l.retention_rate)),
    ]
}

pub fn recurring(o: &OrgSummary) -> Vec<Figure> {
    let r = &o.recurring;
    vec![
        Figure::new("Active recurring plans", format::count(r.active_plans)),
        Figure::new("Recurring donors", format::count(r.recurring_donors)),
        Figure::new("Monthly recurring revenue", money(r.mrr_cents)),
    ]
}

pub fn quality(o: &OrgSummary) -> Vec<Figure> {
    vec![Figure::new(
        "Data quality score (out of 100)",
        format!("{:.1}", o.quality.score),
    )]
}

/// Whether a trend's figure is an amount of money (shown in dollars).
fn is_money(figure: &str) -> bool {
    figure.ends_with("_cents")
}

/// A figure's name in words: `gross_cents` is "Gross raised"; an unknown name is spelled out
/// (`refunded_cents` is "Refunded").
pub fn figure_name(figure: &str) -> String {
    match figure {
        "gross_cents" => "Gross raised".into(),
        "net_cents" => "Net raised".into(),
        "gifts" => "Gifts".into(),
        "donors" => "Donors".into(),
        other => {
            let words = other.trim_end_matches("_cents").replace('_', " ");
            let mut c = words.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        }
    }
}

fn trend(t: &Trend, comparison: &str) -> Figure {
    let show = |v: i64| {
        if is_money(&t.figure) {
            money(v)
        } else if v < 0 {
            format!("-{}", format::count(v.unsigned_abs()))
        } else {
            format::count(v as u64)
        }
    };
    Figure {
        label: format!("{} ({comparison})", figure_name(&t.figure)),
        values: vec![
            show(t.current),
            show(t.previous),
            format::change(t.change_pct),
        ],
    }
}

/// Week over week, then month over month: values are this period, the previous, the change.
pub fn trends(o: &OrgSummary) -> Vec<Figure> {
    o.trends
        .week_over_week
        .iter()
        .map(|t| trend(t, "week over week"))
        .chain(
            o.trends
                .month_over_month
                .iter()
                .map(|t| trend(t, "month over month")),
        )
        .collect()
}

/// Why a donor is at risk, in words.
pub fn risk_reason(r: RiskReason) -> &'static str {
    match r {
        RiskReason::PlanFailing => "Recurring plan failing",
        RiskReason::Overdue => "Overdue for their usual gift",
    }
}

pub fn risk_reasons(rs: &[RiskReason]) -> String {
    rs.iter()
        .map(|r| risk_reason(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The FEP section's figures when there are none (an organization the pass did not cover).
pub fn fep_missing() -> Vec<Figure> {
    vec![Figure::new("FEP figures", "not computed".into())]
}

/// What the FEP figures compare: `Last 12 months (2025-11-01 to 2026-10-31) compared with the
/// 12 months before (2024-11-01 to 2025-10-31)`.
pub fn fep_windows(r: &FepReport) -> String {
    let span = |w: &crate::domain::analytics::Window| {
        format!("{} to {}", format::date(w.start), format::date(w.end - 1))
    };
    format!(
        "{} ({}) compared with the period before ({})",
        format::period_words(&r.period),
        span(&r.current),
        span(&r.previous)
    )
}

fn signed_count(n: i64) -> String {
    if n < 0 {
        format!("-{}", format::count(n.unsigned_abs()))
    } else {
        format::count(n as u64)
    }
}

fn flow(f: &Flow) -> String {
    format!("{} donors, {}", signed_count(f.donors), money(f.cents))
}

fn lapsed(g: &LapsedGroup) -> String {
    format!(
        "{} donors, {} at risk, {} reachable in Mailchimp",
        format::count(g.donors),
        money(g.dollars_at_risk_cents),
        format::count(g.mailchimp_consented)
    )
}

/// The FEP figures a report shows: retention (overall, new, repeat, dollars), the gain/loss
/// attribution, LYBUNT and SYBUNT with the dollars at risk, monthly recurring revenue.
pub fn fep(r: &FepReport) -> Vec<Figure> {
    let x = &r.retention;
    let share = |rate: Option<f64>, part: u64, whole: u64| {
        format!(
            "{} ({} of {} donors)",
            format::ratio(rate),
            format::count(part),
            format::count(whole)
        )
    };
    let g = &r.gain_loss;
    let l = &r.lapsed;
    let p = &r.recurring;
    vec![
        Figure::new(
            "Donor retention",
            share(x.rate, x.retained, x.donors_previous),
        ),
        Figure::new(
            "New-donor retention",
            share(
                x.new_donor_rate,
                x.new_donors_retained,
                x.new_donors_previous,
            ),
        ),
        Figure::new(
            "Repeat-donor retention",
            share(
                x.repeat_donor_rate,
                x.repeat_donors_retained,
                x.repeat_donors_previous,
            ),
        ),
        Figure::new(
            "Dollar retention",
            format!(
                "{} ({} of {})",
                format::ratio(x.dollar_rate),
                money(x.dollars_retained_cents),
                money(x.dollars_previous_cents)
            ),
        ),
        Figure::new("Gained: new donors", flow(&g.new)),
        Figure::new("Gained: recaptured donors", flow(&g.recaptured)),
        Figure::new("Gained: upgraded donors", flow(&g.upgraded)),
        Figure::new("Same amount", flow(&g.same)),
        Figure::new("Lost: downgraded donors", flow(&g.downgraded)),
        Figure::new("Lost: lapsed donors", flow(&g.lapsed)),
        Figure::new("Net change", flow(&g.net)),
        Figure::new(
            format!(
                "LYBUNT (gave in {}, not yet in {})",
                l.last_year, l.this_year
            ),
            lapsed(&l.lybunt),
        ),
        Figure::new(
            format!(
                "SYBUNT (gave before {}, not in {} or {})",
                l.last_year, l.last_year, l.this_year
            ),
            lapsed(&l.sybunt),
        ),
        Figure::new("Monthly recurring revenue", money(p.mrr_cents)),
        Figure::new(
            "Recurring revenue churn",
            format!(
                "{} ({} canceled)",
                format::ratio(p.mrr_churn_rate),
                money(p.churned_mrr_cents)
            ),
        ),
    ]
}
