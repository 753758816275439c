//! FEP figures on the sandbox's deterministic data, synced over real sockets: every figure
//! equals a computation made here from the sandbox's own records (admin API), by plain loops
//! over its transactions and plans, for several periods and two fiscal-year starts. The
//! generator makes no chargebacks and only monthly plans, so the test plants some through the
//! admin API before syncing.

use chrono::{DateTime, Datelike, NaiveDate};
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::analytics::fep::{FepOptions, FepReport, LapsedGroup};
use classy_sync_core::domain::analytics::Period;
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_tests::Harness;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

const DAY: i64 = 86_400;

fn config() -> SandboxConfig {
    SandboxConfig {
        seed: 29,
        orgs: 1,
        apps: 1,
        supporters: 900,
        campaigns: 6,
        transactions: 3500,
        plans: 220,
        ..SandboxConfig::default()
    }
}

/// After all generated data (which ends 2026-10-31).
fn now() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00Z").unwrap()
}

fn midnight(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

/// Classy's wire format, parsed here with chrono alone.
fn ts(v: &Value) -> Option<i64> {
    DateTime::parse_from_str(v.as_str()?, "%Y-%m-%dT%H:%M:%S%z")
        .ok()
        .map(|d| d.timestamp())
}

fn cents(v: &Value) -> i64 {
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    };
    (x * 100.0).round() as i64
}

struct Truth {
    supporters: HashMap<u64, Value>,
    txns: Vec<Value>,
    plans: Vec<Value>,
}

async fn truth(h: &Harness, org: u64) -> Truth {
    Truth {
        supporters: h
            .truth(org, Entity::Supporters)
            .await
            .into_iter()
            .map(|s| (s["id"].as_u64().unwrap(), s))
            .collect(),
        txns: h.truth(org, Entity::Transactions).await,
        plans: h.truth(org, Entity::RecurringPlans).await,
    }
}

/// The calendar year a gift's fiscal year ends in, for years starting in `first_month`.
fn fiscal_label(t: i64, first_month: u32) -> i32 {
    let d = DateTime::from_timestamp(t, 0).unwrap();
    if first_month > 1 && d.month() >= first_month {
        d.year() + 1
    } else {
        d.year()
    }
}

/// The Mailchimp push's consent rule, restated: opted in, with something@domain.tld and no
/// spaces.
fn consented(s: &Value) -> bool {
    let opt_in = matches!(&s["opt_in"], Value::Bool(true))
        || s["opt_in"] == json!(1)
        || s["opt_in"] == json!("1")
        || s["opt_in"] == json!("true");
    let e = s["email_address"].as_str().unwrap_or("").trim();
    let ok = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    };
    opt_in && ok
}

fn name(s: Option<&Value>) -> Option<String> {
    let s = s?;
    let parts: Vec<String> = ["first_name", "last_name"]
        .iter()
        .filter_map(|k| s[*k].as_str().map(|x| x.trim().to_string()))
        .filter(|x| !x.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    if b == 0 {
        None
    } else {
        Some(a as f64 / b as f64)
    }
}

/// Payments per year for the frequencies the plans here use.
fn per_year(f: &str) -> i64 {
    match f {
        "weekly" => 52,
        "monthly" => 12,
        "quarterly" => 4,
        "yearly" | "annually" => 1,
        other => panic!("frequency {other} not planted by this test"),
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    t: &Truth,
    r: &FepReport,
    what: &str,
    p: (i64, i64),
    c: (i64, i64),
    fy: u32,
    limit: usize,
) {
    let ctx = format!("period {what}, fiscal year from month {fy}");
    assert_eq!((r.previous.start, r.previous.end), p, "{ctx}");
    assert_eq!((r.current.start, r.current.end), c, "{ctx}");
    let in_p = |d: i64| p.0 <= d && d < p.1;
    let in_c = |d: i64| c.0 <= d && d < c.1;

    // Successful gifts made before C ends, per supporter: (date, cents).
    let mut gifts: BTreeMap<u64, Vec<(i64, i64)>> = BTreeMap::new();
    for x in &t.txns {
        let Some(sup) = x["supporter_id"].as_u64() else {
            continue;
        };
        let date = ts(&x["purchased_at"]).unwrap();
        if x["status"] == "success" && date < c.1 {
            gifts
                .entry(sup)
                .or_default()
                .push((date, cents(&x["total_gross_amount"])));
        }
    }

    // Retention and gain/loss.
    let (mut p_donors, mut c_donors, mut kept) = (0i64, 0i64, 0i64);
    let (mut new_p, mut new_kept, mut rep_p, mut rep_kept) = (0i64, 0i64, 0i64, 0i64);
    let (mut p_dollars, mut c_dollars, mut kept_dollars) = (0i64, 0i64, 0i64);
    let mut lines: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut bands = [(0i64, 0i64); 4];
    for list in gifts.values() {
        let first = list.iter().map(|g| g.0).min().unwrap();
        let pc: Vec<i64> = list.iter().filter(|g| in_p(g.0)).map(|g| g.1).collect();
        let cc: Vec<i64> = list.iter().filter(|g| in_c(g.0)).map(|g| g.1).collect();
        let (ps, cs): (i64, i64) = (pc.iter().sum(), cc.iter().sum());
        p_dollars += ps;
        c_dollars += cs;
        if !pc.is_empty() {
            p_donors += 1;
            if in_p(first) {
                new_p += 1;
            }
            if first < p.0 {
                rep_p += 1;
            }
        }
        if !cc.is_empty() {
            c_donors += 1;
            let b = if cs >= 1_000_000 {
                3
            } else if cs >= 100_000 {
                2
            } else if cs >= 10_000 {
                1
            } else {
                0
            };
            bands[b].0 += 1;
            bands[b].1 += cs;
        }
        if !pc.is_empty() && !cc.is_empty() {
            kept += 1;
            kept_dollars += cs;
            if in_p(first) {
                new_kept += 1;
            }
            if first < p.0 {
                rep_kept += 1;
            }
        }
        let (line, amount) = if pc.is_empty() && cc.is_empty() {
            continue;
        } else if pc.is_empty() && in_c(first) {
            ("new", cs)
        } else if pc.is_empty() {
            ("recaptured", cs)
        } else if cc.is_empty() {
            ("lapsed", ps)
        } else if cs > ps {
            ("upgraded", cs - ps)
        } else if cs < ps {
            ("downgraded", ps - cs)
        } else {
            ("same", 0)
        };
        let e = lines.entry(line).or_default();
        e.0 += 1;
        e.1 += amount;
    }
    let ret = &r.retention;
    assert!(p_donors > 0 && c_donors > 0 && kept > 0, "{ctx}: thin data");
    assert_eq!(ret.donors_previous as i64, p_donors, "{ctx}");
    assert_eq!(ret.donors_current as i64, c_donors, "{ctx}");
    assert_eq!(ret.retained as i64, kept, "{ctx}");
    assert_eq!(ret.rate, ratio(kept, p_donors), "{ctx}");
    assert_eq!(
        (
            ret.new_donors_previous as i64,
            ret.new_donors_retained as i64
        ),
        (new_p, new_kept),
        "{ctx}"
    );
    assert_eq!(ret.new_donor_rate, ratio(new_kept, new_p), "{ctx}");
    assert_eq!(
        (
            ret.repeat_donors_previous as i64,
            ret.repeat_donors_retained as i64
        ),
        (rep_p, rep_kept),
        "{ctx}"
    );
    assert_eq!(ret.repeat_donor_rate, ratio(rep_kept, rep_p), "{ctx}");
    assert_eq!(ret.dollars_previous_cents, p_dollars, "{ctx}");
    assert_eq!(ret.dollars_current_cents, c_dollars, "{ctx}");
    assert_eq!(ret.dollars_retained_cents, kept_dollars, "{ctx}");
    assert_eq!(ret.dollar_rate, ratio(kept_dollars, p_dollars), "{ctx}");
    let gl = &r.gain_loss;
    let line = |k: &str| lines.get(k).copied().unwrap_or_default();
    for (k, f) in [
        ("new", gl.new),
        ("recaptured", gl.recaptured),
        ("upgraded", gl.upgraded),
        ("same", gl.same),
        ("downgraded", gl.downgraded),
        ("lapsed", gl.lapsed),
    ] {
        assert_eq!((f.donors, f.cents), line(k), "{ctx}: {k}");
    }
    assert_eq!(gl.net.donors, c_donors - p_donors, "{ctx}");
    assert_eq!(gl.net.cents, c_dollars - p_dollars, "{ctx}");
    assert_eq!(
        gl.gains.cents,
        line("new").1 + line("recaptured").1 + line("upgraded").1,
        "{ctx}"
    );
    assert_eq!(
        gl.losses.cents,
        line("downgraded").1 + line("lapsed").1,
        "{ctx}"
    );

    // Bands.
    let have: Vec<(i64, i64)> = r.bands.iter().map(|b| (b.donors as i64, b.cents)).collect();
    assert_eq!(have, bands.to_vec(), "{ctx}: bands");

    // Average and median of the gifts in C.
    let mut amounts: Vec<i64> = gifts
        .values()
        .flatten()
        .filter(|g| in_c(g.0))
        .map(|g| g.1)
        .collect();
    amounts.sort_unstable();
    let n = amounts.len();
    assert_eq!(r.gifts.gifts as usize, n, "{ctx}");
    assert_eq!(r.gifts.donors as i64, c_donors, "{ctx}");
    assert_eq!(r.gifts.gross_cents, c_dollars, "{ctx}");
    assert_eq!(
        r.gifts.average_gift_cents,
        Some((c_dollars as f64 / n as f64).round() as i64),
        "{ctx}"
    );
    let median = if n % 2 == 1 {
        amounts[n / 2]
    } else {
        ((amounts[n / 2 - 1] + amounts[n / 2]) as f64 / 2.0).round() as i64
    };
    assert_eq!(r.gifts.median_gift_cents, Some(median), "{ctx}");

    // Refunds and chargebacks: gifts dated in C, by status now.
    let mut refunds: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
    for x in &t.txns {
        if x["supporter_id"].as_u64().is_none() || !in_c(ts(&x["purchased_at"]).unwrap()) {
            continue;
        }
        let s = x["status"].as_str().unwrap_or("");
        if matches!(s, "refunded" | "cb_lost" | "cb_initiated") {
            let e = refunds.entry(s).or_default();
            e.0 += 1;
            e.1 += cents(&x["total_gross_amount"]);
        }
    }
    let rf = &r.refunds;
    let got = |k: &str| refunds.get(k).copied().unwrap_or_default();
    assert_eq!(
        (rf.refunded.count, rf.refunded.cents),
        got("refunded"),
        "{ctx}"
    );
    assert_eq!(
        (rf.chargebacks_lost.count, rf.chargebacks_lost.cents),
        got("cb_lost"),
        "{ctx}"
    );
    assert_eq!(
        (
            rf.chargebacks_initiated.count,
            rf.chargebacks_initiated.cents
        ),
        got("cb_initiated"),
        "{ctx}"
    );
    assert_eq!(
        rf.total.count,
        got("refunded").0 + got("cb_lost").0 + got("cb_initiated").0,
        "{ctx}"
    );

    // LYBUNT and SYBUNT by fiscal-year labels.
    let this = fiscal_label(c.1 - 1, fy);
    assert_eq!(
        (r.lapsed.this_year, r.lapsed.last_year),
        (this, this - 1),
        "{ctx}"
    );
    let mut ly: Vec<(i64, u64, i32, bool, Option<String>)> = Vec::new();
    let mut sy = ly.clone();
    for (&sup, list) in &gifts {
        let mut by_year: BTreeMap<i32, i64> = BTreeMap::new();
        for g in list {
            *by_year.entry(fiscal_label(g.0, fy)).or_default() += g.1;
        }
        if by_year.contains_key(&this) {
            continue;
        }
        let (&year, &amount) = by_year.iter().next_back().unwrap();
        let rec = t.supporters.get(&sup);
        let row = (amount, sup, year, rec.is_some_and(consented), name(rec));
        if year == this - 1 {
            ly.push(row);
        } else {
            sy.push(row);
        }
    }
    for (label, want, have) in [
        ("LYBUNT", ly, &r.lapsed.lybunt),
        ("SYBUNT", sy, &r.lapsed.sybunt),
    ] {
        check_group(&ctx, label, want, have, limit);
    }

    // Plan health.
    let (mut active, mut new, mut canceled, mut failing, mut failed, mut paused) =
        (0, 0, 0, 0, 0, 0);
    let (mut mrr_year, mut start_year, mut churn_year) = (0i64, 0i64, 0i64);
    for pl in &t.plans {
        let status = pl["status"].as_str().unwrap_or("");
        let began = ts(&pl["started_at"])
            .or_else(|| ts(&pl["created_at"]))
            .unwrap_or_else(|| ts(&pl["updated_at"]).unwrap());
        let updated = ts(&pl["updated_at"]).unwrap();
        let stopped = match status {
            "canceled" => Some(ts(&pl["canceled_at"]).unwrap_or(updated)),
            "failed" | "ended" => Some(updated),
            _ => None,
        };
        let yearly =
            cents(&pl["donation_amount"]) * per_year(pl["frequency"].as_str().unwrap_or("monthly"));
        let real = status != "draft" && status != "attempted";
        let live_at_start = real && began < c.0 && stopped.is_none_or(|s| s >= c.0);
        match status {
            "active" => {
                active += 1;
                mrr_year += yearly;
            }
            "failing" => failing += 1,
            "paused" => paused += 1,
            "failed" if in_c(updated) => failed += 1,
            _ => {}
        }
        let canceled_in_c = status == "canceled" && stopped.is_some_and(in_c);
        if canceled_in_c {
            canceled += 1;
        }
        if real && in_c(began) {
            new += 1;
        }
        if live_at_start {
            start_year += yearly;
            if canceled_in_c {
                churn_year += yearly;
            }
        }
    }
    let h = &r.recurring;
    assert_eq!(
        (h.active, h.new, h.canceled, h.failing, h.failed, h.paused),
        (active, new, canceled, failing, failed, paused),
        "{ctx}"
    );
    // Summed here in whole cents a year, there in fractional cents a month: the rounding to
    // a cent may differ by one.
    let close = |have: i64, year: i64| (have - (year as f64 / 12.0).round() as i64).abs() <= 1;
    assert!(
        close(h.mrr_cents, mrr_year),
        "{ctx}: {} vs {mrr_year}/12",
        h.mrr_cents
    );
    assert!(close(h.mrr_at_start_cents, start_year), "{ctx}");
    assert!(close(h.churned_mrr_cents, churn_year), "{ctx}");
    let rate = h.mrr_churn_rate.unwrap();
    assert!(
        (rate - churn_year as f64 / start_year as f64).abs() < 1e-3,
        "{ctx}"
    );
    assert_eq!(h.unknown_frequency, 0);
}

fn check_group(
    ctx: &str,
    label: &str,
    mut want: Vec<(i64, u64, i32, bool, Option<String>)>,
    have: &LapsedGroup,
    limit: usize,
) {
    assert_eq!(have.donors as usize, want.len(), "{ctx}: {label}");
    assert_eq!(
        have.dollars_at_risk_cents,
        want.iter().map(|w| w.0).sum::<i64>(),
        "{ctx}: {label}"
    );
    assert_eq!(
        have.mailchimp_consented as usize,
        want.iter().filter(|w| w.3).count(),
        "{ctx}: {label}"
    );
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    want.truncate(limit);
    let rows: Vec<(i64, u64, i32, bool, Option<String>)> = have
        .list
        .iter()
        .map(|d| {
            (
                d.amount_cents,
                d.supporter_id,
                d.last_year,
                d.mailchimp_consent,
                d.name.clone(),
            )
        })
        .collect();
    assert_eq!(rows, want, "{ctx}: {label} list");
}

async fn sync(h: &Harness, org: u64) {
    for r in h
        .sync
        .sync_org(org, SyncMode::Full, &RunControl::default())
        .await
    {
        assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
    }
    h.data.refresh_aggregates(org).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fep_figures_equal_an_independent_computation_for_several_periods() {
    let h = Harness::start(config()).await;
    let org = h.orgs[0];
    let end = now().unix();

    // Chargebacks the generator never makes: among recent and 2025 successful gifts.
    let txns = h.truth(org, Entity::Transactions).await;
    let success_in = |a: i64, b: i64| -> Vec<u64> {
        txns.iter()
            .filter(|x| x["status"] == "success")
            .filter(|x| ts(&x["purchased_at"]).is_some_and(|d| a <= d && d < b))
            .map(|x| x["id"].as_u64().unwrap())
            .collect()
    };
    let recent = success_in(end - 30 * DAY, end);
    let year_2025 = success_in(midnight(2025, 1, 1), midnight(2026, 1, 1));
    assert!(recent.len() >= 4 && year_2025.len() >= 3);
    for (id, status) in [
        (recent[0], "cb_lost"),
        (recent[1], "cb_lost"),
        (recent[2], "cb_initiated"),
        (recent[3], "refunded"),
        (year_2025[0], "cb_lost"),
        (year_2025[1], "cb_initiated"),
    ] {
        h.patch(org, Entity::Transactions, id, json!({"status": status}))
            .await;
    }
    // Plans of other frequencies, for the MRR normalization.
    let plans = h.truth(org, Entity::RecurringPlans).await;
    let old_active: Vec<u64> = plans
        .iter()
        .filter(|p| p["status"] == "active")
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    for (id, freq) in old_active.iter().zip(["quarterly", "yearly", "weekly"]) {
        h.patch(org, Entity::RecurringPlans, *id, json!({"frequency": freq}))
            .await;
    }

    sync(&h, org).await;
    let t = truth(&h, org).await;
    let periods = [
        (
            "30d",
            (end - 60 * DAY, end - 30 * DAY),
            (end - 30 * DAY, end),
        ),
        (
            "12m",
            (midnight(2024, 11, 1), midnight(2025, 11, 1)),
            (midnight(2025, 11, 1), end),
        ),
        (
            "2025",
            (midnight(2024, 1, 1), midnight(2025, 1, 1)),
            (midnight(2025, 1, 1), midnight(2026, 1, 1)),
        ),
        (
            "ytd",
            (midnight(2025, 1, 1), midnight(2025, 11, 1)),
            (midnight(2026, 1, 1), end),
        ),
        (
            "2024-03-01..2024-05-31",
            (midnight(2023, 11, 30), midnight(2024, 3, 1)),
            (midnight(2024, 3, 1), midnight(2024, 6, 1)),
        ),
    ];
    let mut plan_events = (0, 0, 0, 0);
    for (fy, limit) in [(1u32, 15usize), (7, 4)] {
        for (what, p, c) in periods {
            let period: Period = what.parse().unwrap();
            let opts = FepOptions {
                limit,
                fiscal_year_start_month: fy,
            };
            let r = h.data.fep_report(org, &period, now(), &opts).await.unwrap();
            check(&t, &r, what, p, c, fy, limit);
            let x = &r.recurring;
            plan_events.0 += x.new;
            plan_events.1 += x.canceled;
            plan_events.2 += x.failed;
            plan_events.3 += (x.churned_mrr_cents > 0) as u64;
        }
    }
    // Every kind of plan event occurs in some period (the checks above are not vacuous).
    assert!(
        plan_events.0 > 0 && plan_events.1 > 0 && plan_events.2 > 0 && plan_events.3 > 0,
        "{plan_events:?}"
    );
    // The planted chargebacks are seen (so the refund figures are not all zero).
    let r = h
        .data
        .fep_report(org, &"30d".parse().unwrap(), now(), &FepOptions::default())
        .await
        .unwrap();
    assert_eq!(r.refunds.chargebacks_lost.count, 2);
    assert_eq!(r.refunds.chargebacks_initiated.count, 1);
    assert!(r.refunds.refunded.count >= 1);
    // And both lists are populated (the early date range may have no SYBUNT yet).
    assert!(r.lapsed.lybunt.donors > 0 && r.lapsed.sybunt.donors > 0);
    assert!(r.lapsed.lybunt.mailchimp_consented > 0);
}
