//! Analytics and data quality on the sandbox's deterministic data, synced over real sockets:
//! every figure equals a computation made here from the sandbox's own records (admin API),
//! with a fixed `now`; the quality report finds exactly the defects the sandbox plants and
//! nothing on clean data.

use chrono::{DateTime, NaiveDate};
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::analytics::{AnalyticsConfig, Period};
use classy_sync_core::domain::quality::Rule;
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_tests::Harness;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

fn config() -> SandboxConfig {
    SandboxConfig {
        seed: 11,
        orgs: 2,
        apps: 1,
        supporters: 800,
        campaigns: 8,
        transactions: 3000,
        plans: 150,
        ..SandboxConfig::default()
    }
}

/// After all generated data (which ends 2026-10-31).
fn now() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00Z").unwrap()
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

/// Classy's wire format, parsed here with chrono alone.
fn ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
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

#[derive(Clone, Copy, Debug)]
struct G {
    txn: u64,
    date: i64,
    gross: i64,
    net: i64,
    fees: i64,
    campaign: u64,
}

struct Truth {
    supporters: Vec<Value>,
    campaigns: Vec<Value>,
    txns: Vec<Value>,
    plans: Vec<Value>,
    /// Successful gifts by supporter, sorted by date.
    gifts: BTreeMap<u64, Vec<G>>,
}

async fn truth(h: &Harness, org: u64) -> Truth {
    let txns = h.truth(org, Entity::Transactions).await;
    let mut gifts: BTreeMap<u64, Vec<G>> = BTreeMap::new();
    for t in txns.iter().filter(|t| t["status"] == "success") {
        gifts
            .entry(t["supporter_id"].as_u64().unwrap())
            .or_default()
            .push(G {
                txn: t["id"].as_u64().unwrap(),
                date: ts(&t["purchased_at"]).unwrap(),
                gross: cents(&t["total_gross_amount"]),
                net: cents(&t["donation_net_amount"]),
                fees: cents(&t["fees_amount"]),
                campaign: t["campaign_id"].as_u64().unwrap(),
            });
    }
    for g in gifts.values_mut() {
        g.sort_by_key(|x| x.date);
    }
    Truth {
        supporters: h.truth(org, Entity::Supporters).await,
        campaigns: h.truth(org, Entity::Campaigns).await,
        txns,
        plans: h.truth(org, Entity::RecurringPlans).await,
        gifts,
    }
}

fn within(g: &G, start: i64, end: i64) -> bool {
    start <= g.date && g.date < end
}

/// gross, net, gifts, donors in [start, end).
fn figures(t: &Truth, start: i64, end: i64) -> (i64, i64, u64, u64) {
    let mut f = (0, 0, 0, 0);
    for gifts in t.gifts.values() {
        let mut any = false;
        for g in gifts.iter().filter(|g| within(g, start, end)) {
            f.0 += g.gross;
            f.1 += g.net;
            f.2 += 1;
            any = true;
        }
        f.3 += any as u64;
    }
    f
}

fn rfm_here(days: i64, n: usize, m: i64) -> u8 {
    let r = [90, 180, 365, 730].iter().filter(|d| days > **d).count() as u8;
    let f: u8 = match n {
        0 | 1 => 1,
        2 => 2,
        3 | 4 => 3,
        5..=9 => 4,
        _ => 5,
    };
    let mm = [5_000, 25_000, 100_000, 500_000]
        .iter()
        .filter(|c| m >= **c)
        .count() as u8
        + 1;
    (5 - r) + f + mm
}

async fn check_summary(h: &Harness, org: u64, t: &Truth, period: &str, start: i64, end: i64) {
    let s = h
        .data
        .summarize(org, &period.parse::<Period>().unwrap(), now())
        .await
        .unwrap();
    assert_eq!((s.period.start, s.period.end), (start, end), "{period}");
    let ctx = format!("org {org} period {period}");

    // Totals; fees checked against Classy's own fees_amount.
    let (gross, net, gifts, donors) = figures(t, start, end);
    let fees: i64 = t
        .gifts
        .values()
        .flatten()
        .filter(|g| within(g, start, end))
        .map(|g| g.fees)
        .sum();
    assert!(gifts > 0, "{ctx}: the period must hold gifts");
    assert_eq!(s.totals.gross_cents, gross, "{ctx}");
    assert_eq!(s.totals.net_cents, net, "{ctx}");
    assert_eq!(s.totals.fees_cents, fees, "{ctx}");
    assert_eq!((s.totals.gifts, s.totals.donors), (gifts, donors), "{ctx}");
    assert_eq!(
        s.totals.average_gift_cents,
        (gross as f64 / gifts as f64).round() as i64
    );

    // Lifecycle and retention.
    let (mut new, mut ret, mut react, mut lapsed, mut lost, mut prev, mut kept) =
        (0, 0, 0, 0, 0, 0, 0);
    let len = end - start;
    for gifts in t.gifts.values() {
        let before_end: Vec<&G> = gifts.iter().filter(|g| g.date < end).collect();
        let Some(last) = before_end.last() else {
            continue;
        };
        let gave = before_end.iter().any(|g| g.date >= start);
        if gave {
            if before_end[0].date >= start {
                new += 1;
            } else if before_end
                .iter()
                .any(|g| g.date >= start - YEAR && g.date < start)
            {
                ret += 1;
            } else {
                react += 1;
            }
        }
        if end - last.date >= 2 * YEAR {
            lost += 1;
        } else if end - last.date >= YEAR {
            lapsed += 1;
        }
        if before_end
            .iter()
            .any(|g| g.date >= start - len && g.date < start)
        {
            prev += 1;
            kept += gave as u64;
        }
    }
    let l = &s.lifecycle;
    assert_eq!(
        (l.new, l.returning, l.reactivated, l.lapsed, l.lost),
        (new, ret, react, lapsed, lost),
        "{ctx}"
    );
    assert_eq!(
        (l.previous_period_donors, l.retained),
        (prev, kept),
        "{ctx}"
    );
    assert_eq!(
        l.retention_rate,
        (prev > 0).then(|| kept as f64 / prev as f64)
    );
    assert_eq!(new + ret + react, donors);

    // Tiers: lifetime gross before the end, $1,000 / $250.
    let mut tiers = [(0u64, 0i64); 3];
    for gifts in t.gifts.values() {
        let life: Vec<i64> = gifts
            .iter()
            .filter(|g| g.date < end)
            .map(|g| g.gross)
            .collect();
        if life.is_empty() {
            continue;
        }
        let sum: i64 = life.iter().sum();
        let i = if sum >= 100_000 {
            0
        } else if sum >= 25_000 {
            1
        } else {
            2
        };
        tiers[i].0 += 1;
        tiers[i].1 += sum;
    }
    let got: Vec<(u64, i64)> = s
        .tiers
        .iter()
        .map(|x| (x.donors, x.lifetime_gross_cents))
        .collect();
    assert_eq!(got, tiers.to_vec(), "{ctx}");

    // Trends.
    for (days, list) in [
        (7, &s.trends.week_over_week),
        (30, &s.trends.month_over_month),
    ] {
        let cur = figures(t, end - days * DAY, end);
        let before = figures(t, end - 2 * days * DAY, end - days * DAY);
        let want = [
            (cur.0, before.0),
            (cur.1, before.1),
            (cur.2 as i64, before.2 as i64),
            (cur.3 as i64, before.3 as i64),
        ];
        let have: Vec<(i64, i64)> = list.iter().map(|x| (x.current, x.previous)).collect();
        assert_eq!(have, want.to_vec(), "{ctx} {days}d trends");
        for x in list {
            let dir = serde_json::to_value(x.direction).unwrap();
            let expect = match x.current.cmp(&x.previous) {
                std::cmp::Ordering::Greater => "up",
                std::cmp::Ordering::Less => "down",
                _ => "flat",
            };
            assert_eq!(dir, expect);
        }
    }

    // Gifts per day.
    let mut per_day: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
    for g in t.gifts.values().flatten().filter(|g| within(g, start, end)) {
        let e = per_day.entry(g.date - g.date.rem_euclid(DAY)).or_default();
        e.0 += 1;
        e.1 += g.gross;
    }
    let nonzero: BTreeMap<i64, (u64, i64)> = s
        .gifts_per_day
        .iter()
        .filter(|d| d.gifts > 0)
        .map(|d| (d.day, (d.gifts, d.gross_cents)))
        .collect();
    assert_eq!(nonzero, per_day, "{ctx}");
    assert_eq!(s.gifts_per_day[0].day, start - start.rem_euclid(DAY));

    // Recurring now: active plans, their supporters, monthly amounts.
    let active: Vec<&Value> = t.plans.iter().filter(|p| p["status"] == "active").collect();
    assert!(active.iter().all(|p| p["frequency"] == "monthly"));
    let donors_rec: BTreeSet<u64> = active
        .iter()
        .map(|p| p["supporter_id"].as_u64().unwrap())
        .collect();
    assert_eq!(s.recurring.active_plans, active.len() as u64);
    assert_eq!(s.recurring.recurring_donors, donors_rec.len() as u64);
    assert_eq!(
        s.recurring.mrr_cents,
        active
            .iter()
            .map(|p| cents(&p["donation_amount"]))
            .sum::<i64>()
    );

    // Prospects: RFM total >= 10, best 10 by (total, lifetime, -id).
    let mut prospects: Vec<(u8, i64, u64)> = Vec::new();
    for (id, gifts) in &t.gifts {
        let life: Vec<&G> = gifts.iter().filter(|g| g.date < end).collect();
        let Some(last) = life.last() else { continue };
        let m: i64 = life.iter().map(|g| g.gross).sum();
        let score = rfm_here((end - last.date) / DAY, life.len(), m);
        if score >= 10 {
            prospects.push((score, m, *id));
        }
    }
    prospects.sort_by_key(|p| (std::cmp::Reverse(p.0), std::cmp::Reverse(p.1), p.2));
    assert_eq!(s.prospects_total, prospects.len() as u64, "{ctx}");
    let top: Vec<u64> = prospects.iter().take(10).map(|p| p.2).collect();
    let have: Vec<u64> = s.top_prospects.iter().map(|p| p.supporter_id).collect();
    assert_eq!(have, top, "{ctx}");

    // At risk: failing plans (failed within 90 days) and overdue regular givers.
    let mut risky: BTreeMap<u64, i64> = BTreeMap::new();
    for p in &t.plans {
        let failing = p["status"] == "failing"
            || (p["status"] == "failed" && end - ts(&p["updated_at"]).unwrap() <= 90 * DAY);
        if failing {
            let id = p["supporter_id"].as_u64().unwrap();
            let life: i64 = t.gifts.get(&id).map_or(0, |g| {
                g.iter().filter(|g| g.date < end).map(|g| g.gross).sum()
            });
            risky.insert(id, life);
        }
    }
    for (id, gifts) in &t.gifts {
        let life: Vec<&G> = gifts.iter().filter(|g| g.date < end).collect();
        if life.len() < 3 {
            continue;
        }
        let gap = (life[life.len() - 1].date - life[0].date) / (life.len() as i64 - 1);
        let since = end - life[life.len() - 1].date;
        if since > 2 * gap && since > 30 * DAY && since < YEAR {
            risky.insert(*id, life.iter().map(|g| g.gross).sum());
        }
    }
    assert_eq!(s.at_risk_total, risky.len() as u64, "{ctx}");
    let mut order: Vec<(i64, u64)> = risky.iter().map(|(id, l)| (-l, *id)).collect();
    order.sort();
    let want: Vec<u64> = order.iter().take(10).map(|x| x.1).collect();
    let have: Vec<u64> = s.at_risk.iter().map(|r| r.supporter_id).collect();
    assert_eq!(have, want, "{ctx}");

    // Campaigns: lifetime figures, ranked; period gross.
    for c in &s.top_campaigns {
        let id = c.campaign_id;
        let all: Vec<&G> = t
            .gifts
            .values()
            .flatten()
            .filter(|g| g.campaign == id)
            .collect();
        let raised: i64 = all.iter().map(|g| g.gross).sum();
        let donors: BTreeSet<u64> = t
            .gifts
            .iter()
            .filter(|(_, gs)| gs.iter().any(|g| g.campaign == id))
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(c.raised_gross_cents, raised, "campaign {id}");
        assert_eq!(c.raised_net_cents, all.iter().map(|g| g.net).sum::<i64>());
        assert_eq!(c.gifts, all.len() as u64);
        assert_eq!(c.donors, donors.len() as u64);
        let rec = t.campaigns.iter().find(|x| x["id"] == id).unwrap();
        let goal = cents(&rec["goal"]);
        if goal > 0 {
            let p = (raised as f64 / goal as f64 * 1000.0).round() / 10.0;
            assert_eq!(c.percent_of_goal, Some(p));
        }
        let started = ts(&rec["started_at"]).unwrap();
        let ended = ts(&rec["ended_at"]);
        let until = ended.map_or(end, |e| e.min(end));
        let v = raised / ((until - started) / DAY).max(1);
        assert_eq!(c.daily_velocity_cents, v, "campaign {id}");
        assert_eq!(
            c.projected_total_cents,
            ended.map(|e| if e > end {
                raised + v * ((e - end) / DAY)
            } else {
                raised
            })
        );
        let in_period: Vec<&&G> = all.iter().filter(|g| within(g, start, end)).collect();
        assert_eq!(c.window_gifts, in_period.len() as u64);
        assert_eq!(
            c.window_gross_cents,
            in_period.iter().map(|g| g.gross).sum::<i64>()
        );
    }
    let ranked: Vec<i64> = s
        .top_campaigns
        .iter()
        .map(|c| c.raised_gross_cents)
        .collect();
    assert!(ranked.windows(2).all(|w| w[0] >= w[1]));
    let mut all_raised: Vec<i64> = t
        .campaigns
        .iter()
        .map(|c| {
            let id = c["id"].as_u64().unwrap();
            t.gifts
                .values()
                .flatten()
                .filter(|g| g.campaign == id)
                .map(|g| g.gross)
                .sum()
        })
        .collect();
    all_raised.sort_by(|a, b| b.cmp(a));
    assert_eq!(ranked, all_raised[..ranked.len()].to_vec());
}

fn midnight(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_equal_an_independent_computation_and_quality_finds_the_planted_defects() {
    let h = Harness::start(config()).await;
    let end = now().unix();
    let mut truths = Vec::new();
    for &org in &h.orgs {
        sync(&h, org).await;
        let t = truth(&h, org).await;
        check_summary(&h, org, &t, "30d", end - 30 * DAY, end).await;
        check_summary(
            &h,
            org,
            &t,
            "2025",
            midnight(2025, 1, 1),
            midnight(2026, 1, 1),
        )
        .await;
        check_summary(
            &h,
            org,
            &t,
            "2024-03-01..2024-05-31",
            midnight(2024, 3, 1),
            midnight(2024, 6, 1),
        )
        .await;
        check_summary(&h, org, &t, "12m", midnight(2025, 11, 1), end).await;
        check_journey(&h, org, &t).await;
        truths.push(t);
    }
    check_compare(&h, &truths).await;
    check_quality(&h, &truths).await;
}

async fn check_journey(h: &Harness, org: u64, t: &Truth) {
    // The supporter with the most transactions of any status.
    let mut by_sup: HashMap<u64, Vec<&Value>> = HashMap::new();
    for x in &t.txns {
        by_sup
            .entry(x["supporter_id"].as_u64().unwrap())
            .or_default()
            .push(x);
    }
    let (&sup, txns) = by_sup
        .iter()
        .max_by_key(|(id, v)| (v.len(), std::cmp::Reverse(**id)))
        .unwrap();
    let j = h
        .data
        .donor_journey(org, sup, now().unix(), &AnalyticsConfig::default())
        .await
        .unwrap();
    let mut want: Vec<(i64, u64)> = txns
        .iter()
        .map(|x| (ts(&x["purchased_at"]).unwrap(), x["id"].as_u64().unwrap()))
        .collect();
    want.sort();
    let have: Vec<(i64, u64)> = j.gifts.iter().map(|g| (g.date, g.transaction_id)).collect();
    assert_eq!(have, want);
    let mut last: Option<i64> = None;
    for g in &j.gifts {
        let ok = t
            .gifts
            .get(&sup)
            .is_some_and(|gs| gs.iter().any(|x| x.txn == g.transaction_id));
        let expect = ok.then(|| match last {
            None => "new",
            Some(p) if g.date - p <= YEAR => "returning",
            _ => "reactivated",
        });
        assert_eq!(g.segment.as_deref(), expect, "txn {}", g.transaction_id);
        if ok {
            last = Some(g.date);
        }
    }
    let life: i64 = t
        .gifts
        .get(&sup)
        .map_or(0, |g| g.iter().map(|g| g.gross).sum());
    assert_eq!(j.lifetime_gross_cents, life);
    let plans: BTreeSet<u64> = t
        .plans
        .iter()
        .filter(|p| p["supporter_id"] == sup)
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        j.plans.iter().map(|p| p.plan_id).collect::<BTreeSet<_>>(),
        plans
    );
}

async fn check_compare(h: &Harness, truths: &[Truth]) {
    let period: Period = "90d".parse().unwrap();
    let c = h
        .data
        .compare(&h.orgs, &period, now(), &AnalyticsConfig::default())
        .await
        .unwrap();
    let end = now().unix();
    let mut gross = 0;
    let mut gifts = 0;
    for (s, t) in c.summaries.iter().zip(truths) {
        let f = figures(t, end - 90 * DAY, end);
        assert_eq!((s.totals.gross_cents, s.totals.gifts), (f.0, f.2));
        gross += f.0;
        gifts += f.2;
    }
    assert_eq!((c.totals.gross_cents, c.totals.gifts), (gross, gifts));
    assert_eq!(c.summaries.len(), h.orgs.len());
}

/// The sandbox's own notion of a valid email (its generator test), restated here.
fn valid_email(e: &str) -> bool {
    let parts: Vec<&str> = e.split('@').collect();
    parts.len() == 2
        && !parts[0].is_empty()
        && !e.contains(' ')
        && !e.contains("..")
        && parts[1].contains('.')
}

async fn check_quality(h: &Harness, truths: &[Truth]) {
    let report = h
        .data
        .quality_report(&h.orgs, now().unix(), usize::MAX)
        .await
        .unwrap();
    let mut emails_across: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for ((q, t), &org) in report.orgs.iter().zip(truths).zip(&h.orgs) {
        assert_eq!(q.org_id, org);
        let found = |rule: Rule| -> BTreeSet<u64> {
            q.findings
                .iter()
                .filter(|f| f.rule == rule)
                .map(|f| f.id)
                .collect()
        };
        let ids = |f: &dyn Fn(&Value) -> bool, v: &[Value]| -> BTreeSet<u64> {
            v.iter()
                .filter(|x| f(x))
                .map(|x| x["id"].as_u64().unwrap())
                .collect()
        };
        let invalid = ids(
            &|s: &Value| !valid_email(s["email_address"].as_str().unwrap_or("")),
            &t.supporters,
        );
        let no_name = ids(
            &|s: &Value| s["first_name"].is_null() || s["last_name"].is_null(),
            &t.supporters,
        );
        let supporter_ids: BTreeSet<u64> = ids(&|_: &Value| true, &t.supporters);
        let orphans = ids(
            &|x: &Value| !supporter_ids.contains(&x["supporter_id"].as_u64().unwrap()),
            &t.txns,
        );
        assert!(!invalid.is_empty() && !no_name.is_empty() && !orphans.is_empty());
        assert_eq!(found(Rule::EmailInvalid), invalid, "org {org}");
        assert_eq!(found(Rule::NameMissing), no_name, "org {org}");
        assert_eq!(found(Rule::UnknownSupporter), orphans, "org {org}");

        // Duplicate emails (case-insensitive) within the organization.
        let mut by_email: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for s in &t.supporters {
            let e = s["email_address"]
                .as_str()
                .unwrap_or("")
                .trim()
                .to_lowercase();
            if valid_email(&e) {
                by_email
                    .entry(e.clone())
                    .or_default()
                    .push(s["id"].as_u64().unwrap());
                emails_across.entry(e).or_default().insert(org);
            }
        }
        let want: BTreeSet<Vec<u64>> = by_email.values().filter(|v| v.len() > 1).cloned().collect();
        let have: BTreeSet<Vec<u64>> = q
            .duplicate_groups
            .iter()
            .filter(|g| g.kind == classy_sync_core::domain::quality::DuplicateKind::Email)
            .map(|g| g.members.iter().map(|m| m.1).collect())
            .collect();
        assert!(!want.is_empty());
        assert_eq!(have, want, "org {org}");
        let extra: u64 = want.iter().map(|v| v.len() as u64 - 1).sum();
        assert_eq!(q.counts.get(&Rule::DuplicateEmail).copied(), Some(extra));

        // Likely duplicates: same letters-only name and postal code, different emails.
        let norm = |v: &Value| -> String {
            v.as_str()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        };
        let mut by_name: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        for s in &t.supporters {
            let postal: String = s["postal_code"]
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect::<String>()
                .to_uppercase();
            let (f, l) = (norm(&s["first_name"]), norm(&s["last_name"]));
            if f.is_empty() || l.is_empty() || postal.is_empty() {
                continue;
            }
            let e = s["email_address"]
                .as_str()
                .unwrap_or("")
                .trim()
                .to_lowercase();
            let e = if valid_email(&e) { e } else { String::new() };
            by_name
                .entry(format!("{f}|{l}|{postal}"))
                .or_default()
                .push((s["id"].as_u64().unwrap(), e));
        }
        let want: BTreeSet<Vec<u64>> = by_name
            .values()
            .filter(|v| {
                let emails: BTreeSet<&str> = v.iter().map(|x| x.1.as_str()).collect();
                v.len() > 1 && (emails.len() > 1 || emails.contains(""))
            })
            .map(|v| v.iter().map(|x| x.0).collect())
            .collect();
        let have: BTreeSet<Vec<u64>> = q
            .duplicate_groups
            .iter()
            .filter(|g| g.kind == classy_sync_core::domain::quality::DuplicateKind::NamePostal)
            .map(|g| g.members.iter().map(|m| m.1).collect())
            .collect();
        assert_eq!(have, want, "org {org}");

        // Nothing else is wrong with the sandbox's data.
        let planted = [
            Rule::EmailInvalid,
            Rule::NameMissing,
            Rule::UnknownSupporter,
            Rule::DuplicateEmail,
            Rule::LikelyDuplicate,
        ];
        for (rule, n) in &q.counts {
            assert!(
                planted.contains(rule),
                "org {org}: unexpected {rule:?} x{n}: {:?}",
                q.findings.iter().find(|f| f.rule == *rule)
            );
        }
        assert!(q.score.score < 100.0 && q.score.score > 0.0);
        let lost: f64 = q.score.costs.iter().map(|c| c.points_lost).sum();
        assert!((100.0 - lost - q.score.score).abs() < 0.051);
    }
    let cross = emails_across.values().filter(|o| o.len() > 1).count() as u64;
    assert_eq!(report.cross_org_duplicates_total, cross);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_data_has_no_findings_and_scores_100() {
    // No generated records: only the clean ones made here through the admin API.
    let h = Harness::start(SandboxConfig {
        orgs: 2,
        supporters: 0,
        campaigns: 0,
        transactions: 0,
        plans: 0,
        ..SandboxConfig::default()
    })
    .await;
    let names = [
        ("Ada", "Lovelace", "92101"),
        ("Alan", "Turing", "10001"),
        ("Grace", "Hopper", "60601"),
    ];
    for &org in &h.orgs {
        let base = format!("/orgs/{org}");
        let camp = h
            .post(
                &format!("{base}/campaigns"),
                json!({"name": "Spring", "goal": 5000, "currency_code": "USD",
                       "started_at": "2025-01-01T00:00:00+0000", "ended_at": "2026-12-31T00:00:00+0000"}),
            )
            .await;
        for (i, (f, l, p)) in names.iter().enumerate() {
            // The same person in both organizations is fine (informational only).
            let s = h
                .post(
                    &format!("{base}/supporters"),
                    json!({"first_name": f, "last_name": l, "postal_code": p,
                           "email_address": format!("{}.{}{i}@example.org", f.to_lowercase(), l.to_lowercase())}),
                )
                .await;
            h.post(
                &format!("{base}/transactions"),
                json!({"supporter_id": s["id"], "campaign_id": camp["id"], "status": "success",
                       "total_gross_amount": 50.0, "donation_gross_amount": 50.0, "fees_amount": 1.4,
                       "donation_net_amount": 48.6, "currency_code": "USD",
                       "purchased_at": "2026-03-01T10:00:00+0000"}),
            )
            .await;
            h.post(
                &format!("{base}/recurring-donation-plans"),
                json!({"supporter_id": s["id"], "campaign_id": camp["id"], "status": "active",
                       "donation_amount": 10.0, "currency_code": "USD", "frequency": "monthly",
                       "started_at": "2026-01-01T00:00:00+0000"}),
            )
            .await;
        }
    }
    for &org in &h.orgs {
        sync(&h, org).await;
    }
    let now = Timestamp(chrono::Utc::now()).unix();
    let report = h.data.quality_report(&h.orgs, now, 100).await.unwrap();
    for q in &report.orgs {
        assert!(q.findings.is_empty(), "{:?}", q.findings);
        assert!(q.duplicate_groups.is_empty(), "{:?}", q.duplicate_groups);
        assert_eq!(q.score.score, 100.0);
        assert_eq!(q.score.checked.get("supporters"), Some(&3));
        assert_eq!(q.score.checked.get("transactions"), Some(&3));
    }
    assert_eq!(report.cross_org_duplicates_total, 3);
}
