//! `classy-sync analytics fep`: the Fundraising Effectiveness Project figures as tables.

use super::analytics::money;
use crate::output::{table, thousands};
use classy_sync_core::domain::analytics::fep::{FepReport, Flow, LapsedGroup};
use classy_sync_core::domain::Timestamp;

fn date(unix: i64) -> String {
    Timestamp::from_unix(unix).0.format("%Y-%m-%d").to_string()
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// "12.3% (45 of 366)".
fn share(rate: Option<f64>, part: u64, whole: u64) -> String {
    format!(
        "{} ({} of {})",
        pct(rate),
        thousands(part),
        thousands(whole)
    )
}

fn signed(n: i64) -> String {
    let s = thousands(n.unsigned_abs());
    if n < 0 {
        format!("-{s}")
    } else {
        s
    }
}

pub fn print(r: &FepReport) {
    println!(
        "Organization {} — Fundraising Effectiveness Project figures, period {}: {} to {}, \
         compared with {} to {}",
        r.org_id,
        r.period,
        date(r.current.start),
        date(r.current.end - 1),
        date(r.previous.start),
        date(r.previous.end - 1)
    );
    let x = &r.retention;
    let mut t = table(&["retention", "value"]);
    for (k, v) in [
        (
            "donor retention",
            share(x.rate, x.retained, x.donors_previous),
        ),
        (
            "new-donor retention",
            share(
                x.new_donor_rate,
                x.new_donors_retained,
                x.new_donors_previous,
            ),
        ),
        (
            "repeat-donor retention",
            share(
                x.repeat_donor_rate,
                x.repeat_donors_retained,
                x.repeat_donors_previous,
            ),
        ),
        (
            "dollar retention",
            format!(
                "{} ({} of {})",
                pct(x.dollar_rate),
                money(x.dollars_retained_cents),
                money(x.dollars_previous_cents)
            ),
        ),
        ("donors, previous period", thousands(x.donors_previous)),
        ("donors, this period", thousands(x.donors_current)),
        ("dollars, previous period", money(x.dollars_previous_cents)),
        ("dollars, this period", money(x.dollars_current_cents)),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    println!("{t}");

    let g = &r.gain_loss;
    let mut t = table(&["gain / loss", "donors", "dollars"]);
    let row = |t: &mut comfy_table::Table, k: &str, f: &Flow| {
        t.add_row(vec![k.to_string(), signed(f.donors), money(f.cents)]);
    };
    for (k, f) in [
        ("new", &g.new),
        ("recaptured", &g.recaptured),
        ("upgraded", &g.upgraded),
        ("same", &g.same),
        ("downgraded", &g.downgraded),
        ("lapsed", &g.lapsed),
        ("gains", &g.gains),
        ("losses", &g.losses),
        ("net", &g.net),
    ] {
        row(&mut t, k, f);
    }
    println!("{t}");

    let l = &r.lapsed;
    for (what, grp) in [
        (
            format!(
                "LYBUNT: gave in {}, not in {} to date",
                l.last_year, l.this_year
            ),
            &l.lybunt,
        ),
        (
            format!(
                "SYBUNT: gave before {}, not in {} or {}",
                l.last_year, l.last_year, l.this_year
            ),
            &l.sybunt,
        ),
    ] {
        print_group(&what, grp, l.fiscal_year_start_month);
    }

    let p = &r.recurring;
    let mut t = table(&["recurring plans", "value"]);
    for (k, v) in [
        ("active", thousands(p.active)),
        ("new in the period", thousands(p.new)),
        ("canceled in the period", thousands(p.canceled)),
        ("failing", thousands(p.failing)),
        ("failed in the period", thousands(p.failed)),
        ("paused", thousands(p.paused)),
        ("monthly recurring revenue", money(p.mrr_cents)),
        ("MRR at the period's start", money(p.mrr_at_start_cents)),
        ("MRR canceled in the period", money(p.churned_mrr_cents)),
        ("MRR churn", pct(p.mrr_churn_rate)),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    println!("{t}");

    let f = &r.refunds;
    let mut t = table(&["refunds and chargebacks", "gifts", "dollars"]);
    for (k, c) in [
        ("refunded", f.refunded),
        ("chargebacks lost", f.chargebacks_lost),
        ("chargebacks under way", f.chargebacks_initiated),
        ("total", f.total),
    ] {
        t.add_row(vec![k.to_string(), thousands(c.count), money(c.cents)]);
    }
    println!("{t}");

    let gf = &r.gifts;
    let mut t = table(&["gifts this period", "value"]);
    for (k, v) in [
        ("gifts", thousands(gf.gifts)),
        ("donors", thousands(gf.donors)),
        ("dollars", money(gf.gross_cents)),
        (
            "average gift",
            gf.average_gift_cents.map_or("-".into(), money),
        ),
        (
            "median gift",
            gf.median_gift_cents.map_or("-".into(), money),
        ),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    println!("{t}");
    let mut t = table(&["giving band (this period)", "donors", "dollars"]);
    for b in &r.bands {
        t.add_row(vec![b.label.clone(), thousands(b.donors), money(b.cents)]);
    }
    println!("{t}");
}

fn print_group(what: &str, g: &LapsedGroup, fy_start: u32) {
    let years = if fy_start == 1 {
        "calendar years".to_string()
    } else {
        format!("fiscal years from month {fy_start}, named by the year they end in")
    };
    println!(
        "{what} ({years}): {} donors, {} at risk, {} consented for Mailchimp",
        thousands(g.donors),
        money(g.dollars_at_risk_cents),
        thousands(g.mailchimp_consented)
    );
    if g.list.is_empty() {
        return;
    }
    let mut t = table(&[
        "supporter",
        "name",
        "last year",
        "amount",
        "last gift",
        "Mailchimp consent",
    ]);
    for d in &g.list {
        t.add_row(vec![
            d.supporter_id.to_string(),
            d.name.clone().unwrap_or_default(),
            d.last_year.to_string(),
            money(d.amount_cents),
            date(d.last_gift_at),
            if d.mailchimp_consent { "yes" } else { "no" }.to_string(),
        ]);
    }
    println!("{t}");
}
