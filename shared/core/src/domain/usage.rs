//! Usage analytics, pure: operation records (one per sync run, plugin push, report send,
//! Classy health check and accepted webhook delivery), their aggregation per
//! organization×operation×subject and per operation, duration percentiles, and each
//! organization's Classy calls per day against the application's rate budget.
//!
//! Percentiles are nearest-rank: the p-th percentile of n sorted durations is the value at
//! rank ⌈p/100 × n⌉ (1-based), always one of the observed values (p50 of [1, 2, 3, 4] is 2).
//!
//! Counts that an operation does not know are `None` (shown as `-`), never guessed: a sum is
//! `None` only when no run of the group knows it, and `runs_without_counts` says how many
//! runs left a count out.

use super::OrgId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Classy allows an application 1,800 calls a minute.
pub const BUDGET_PER_MINUTE: u64 = 1800;
/// The same budget over a whole day.
pub const BUDGET_PER_DAY: u64 = BUDGET_PER_MINUTE * 1440;
/// Run and operation records are kept 90 days: a longer period would silently read less.
pub const MAX_PERIOD_SECS: i64 = 90 * 24 * 3600;
/// The destination plugin whose calls are reported as Mailchimp calls.
pub const MAILCHIMP_PLUGIN: &str = "mailchimp";

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Sync,
    Push,
    Report,
    Health,
    Webhook,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Sync,
        Operation::Push,
        Operation::Report,
        Operation::Health,
        Operation::Webhook,
    ];

    /// Operations with their own operation records (syncs have run records).
    pub const RECORDED: [Operation; 4] = [
        Operation::Push,
        Operation::Report,
        Operation::Health,
        Operation::Webhook,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Sync => "sync",
            Operation::Push => "push",
            Operation::Report => "report",
            Operation::Health => "health",
            Operation::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One operation for one organization (`ORG#<id>` / `OP#<operation>#<start ms>#<id>`; a
/// sync's run record is read as one too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    pub id: String,
    pub org: OrgId,
    pub operation: Operation,
    /// The entity (sync), plugin (push), report id (report), `classy` (health) or the
    /// entities a webhook asked to sync (`supporters+transactions`).
    pub subject: String,
    pub started_at_ms: i64,
    pub duration_ms: u64,
    /// Records fetched from Classy (sync) or sent to the destination (push).
    pub records: Option<u64>,
    /// HTTP requests to Classy (token requests and retries included).
    pub classy_calls: Option<u64>,
    /// HTTP requests to Mailchimp (retries included).
    pub mailchimp_calls: Option<u64>,
    /// HTTP requests to the destination, whichever it is, when the plugin counts them.
    #[serde(default)]
    pub destination_calls: Option<u64>,
    pub error: Option<String>,
}

/// The Mailchimp calls of a push: the destination's calls when the plugin is Mailchimp, none
/// for any other plugin.
pub fn push_mailchimp_calls(plugin: &str, destination_calls: Option<u64>) -> Option<u64> {
    if plugin == MAILCHIMP_PLUGIN {
        destination_calls
    } else {
        Some(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PeriodError(String);

/// A look-back period: `<N>d` or `<N>h`, at most 90 days (what the records keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePeriod {
    pub secs: i64,
}

impl FromStr for UsagePeriod {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || {
            PeriodError(format!(
                "{s:?} is not a period: use <N>d or <N>h (e.g. 30d, 12h), at most 90d"
            ))
        };
        if t.len() < 2 || !t.is_ascii() {
            return Err(bad());
        }
        let (n, unit) = t.split_at(t.len() - 1);
        let n: i64 = n.parse().map_err(|_| bad())?;
        let unit_secs = match unit {
            "d" | "D" => 86_400,
            "h" | "H" => 3_600,
            _ => return Err(bad()),
        };
        if n <= 0 {
            return Err(bad());
        }
        let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
        if secs > MAX_PERIOD_SECS {
            return Err(PeriodError(format!(
                "{s:?} is longer than 90d: run and operation records are kept 90 days"
            )));
        }
        Ok(UsagePeriod { secs })
    }
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending): the value at
/// rank ⌈p/100 × n⌉. `None` for no values.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = u64::from(p.clamp(1, 100));
    let n = sorted.len() as u64;
    // ⌈p·n/100⌉ in integers.
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get((rank - 1) as usize).copied()
}

/// Duration percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

impl Percentiles {
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Percentiles {
            p50: percentile(&values, 50),
            p95: percentile(&values, 95),
            p99: percentile(&values, 99),
        }
    }
}

/// A sum over runs, some of which may not know the count.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    total: u64,
    known: u64,
}

impl Sum {
    fn add(&mut self, v: Option<u64>) {
        if let Some(v) = v {
            self.total += v;
            self.known += 1;
        }
    }

    fn value(self) -> Option<u64> {
        (self.known > 0).then_some(self.total)
    }
}

#[derive(Debug, Default)]
struct Acc {
    runs: u64,
    errors: u64,
    records: Sum,
    classy: Sum,
    mailchimp: Sum,
    without_counts: u64,
    durations: Vec<u64>,
}

impl Acc {
    fn add(&mut self, r: &OpRecord) {
        self.runs += 1;
        if r.error.is_some() {
            self.errors += 1;
        }
        self.records.add(r.records);
        self.classy.add(r.classy_calls);
        self.mailchimp.add(r.mailchimp_calls);
        if r.classy_calls.is_none() || r.mailchimp_calls.is_none() {
            self.without_counts += 1;
        }
        self.durations.push(r.duration_ms);
    }

    fn row(
        self,
        org: Option<(OrgId, String)>,
        operation: Operation,
        subject: Option<String>,
    ) -> UsageRow {
        let (org, org_name) = match org {
            Some((id, name)) => (Some(id), Some(name)),
            None => (None, None),
        };
        UsageRow {
            org,
            org_name,
            operation,
            subject,
            runs: self.runs,
            records: self.records.value(),
            classy_calls: self.classy.value(),
            mailchimp_calls: self.mailchimp.value(),
            runs_without_counts: self.without_counts,
            errors: self.errors,
            error_rate: if self.runs == 0 {
                0.0
            } else {
                self.errors as f64 / self.runs as f64
            },
            duration_ms: Percentiles::of(self.durations),
        }
    }
}

/// One line of the usage: an organization's operation on one subject, or one operation
/// over every organization (no `org`, no `subject`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    pub operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub runs: u64,
    pub records: Option<u64>,
    pub classy_calls: Option<u64>,
    pub mailchimp_calls: Option<u64>,
    /// Runs that did not know their Classy or Mailchimp calls (left out of the sums).
    pub runs_without_counts: u64,
    pub errors: u64,
    /// errors / runs.
    pub error_rate: f64,
    pub duration_ms: Percentiles,
}

/// Bounds on the calls made in an organization's busiest minute of a day, from the runs'
/// intervals (records hold a run's calls and its start and duration, not when each call was
/// made): `at_least` counts, per minute, the calls of runs that lay wholly inside it;
/// `at_most` counts the calls of every run that overlapped it. The true busiest minute lies
/// between the two; `minute` is where `at_most` peaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusiestMinute {
    pub minute: String,
    pub at_least: u64,
    pub at_most: u64,
}

/// An organization's Classy calls on one UTC day (runs count on the day they started).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCalls {
    pub org: OrgId,
    pub day: String,
    pub classy_calls: u64,
    /// Runs that day that did not know their Classy calls.
    pub runs_without_counts: u64,
    /// classy_calls / (1,800 × 1,440).
    pub budget_share: f64,
    pub busiest_minute: Option<BusiestMinute>,
}

/// The whole usage over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub from: String,
    pub to: String,
    pub budget_per_minute: u64,
    pub budget_per_day: u64,
    /// Per organization×operation×subject (entity, plugin, report, ...).
    pub by_org: Vec<UsageRow>,
    /// Per operation, every organization together.
    pub by_operation: Vec<UsageRow>,
    pub classy_calls_per_day: Vec<DayCalls>,
    /// The same per Classy application (client id) and day: the budget is the
    /// application's, shared by every organization it reads.
    pub classy_calls_per_application_day: Vec<ApplicationDayCalls>,
}

/// An application's Classy calls on one UTC day, over the organizations it reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplicationDayCalls {
    /// The application's OAuth client id (not a secret).
    pub application: String,
    pub day: String,
    /// Its organizations with runs that day.
    pub orgs: Vec<OrgId>,
    pub classy_calls: u64,
    pub runs_without_counts: u64,
    pub budget_share: f64,
    pub busiest_minute: Option<BusiestMinute>,
}

#[derive(Debug, Default)]
struct DayAcc {
    calls: u64,
    without: u64,
    /// (start ms, end ms, calls) of the runs with known Classy calls.
    intervals: Vec<(i64, i64, u64)>,
}

/// Adds records one at a time (streamed from the store), then sums them up.
#[derive(Debug, Default)]
pub struct UsageBuilder {
    from_ms: i64,
    to_ms: i64,
    groups: BTreeMap<(OrgId, Operation, String), Acc>,
    ops: BTreeMap<Operation, Acc>,
    days: BTreeMap<(OrgId, String), DayAcc>,
}

fn day_of(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl UsageBuilder {
    /// Records that started in `[from_ms, to_ms]` count; others are ignored.
    pub fn new(from_ms: i64, to_ms: i64) -> Self {
        UsageBuilder {
            from_ms,
            to_ms,
            ..UsageBuilder::default()
        }
    }

    pub fn add(&mut self, r: &OpRecord) {
        if r.started_at_ms < self.from_ms || r.started_at_ms > self.to_ms {
            return;
        }
        self.groups
            .entry((r.org, r.operation, r.subject.clone()))
            .or_default()
            .add(r);
        self.ops.entry(r.operation).or_default().add(r);
        let day = self
            .days
            .entry((r.org, day_of(r.started_at_ms)))
            .or_default();
        match r.classy_calls {
            Some(c) => {
                day.calls += c;
                if c > 0 {
                    let end = r.started_at_ms + r.duration_ms as i64;
                    day.intervals.push((r.started_at_ms, end, c));
                }
            }
            None => day.without += 1,
        }
    }

    /// The usage; `names` gives organizations' names (an unknown one is shown empty) and
    /// `apps` their Classy application (an unknown one is grouped under `""`).
    pub fn finish(self, names: &BTreeMap<OrgId, String>, apps: &BTreeMap<OrgId, String>) -> Usage {
        let by_org = self
            .groups
            .into_iter()
            .map(|((org, op, subject), acc)| {
                let name = names.get(&org).cloned().unwrap_or_default();
                acc.row(Some((org, name)), op, Some(subject))
            })
            .collect();
        let by_operation = self
            .ops
            .into_iter()
            .map(|(op, acc)| acc.row(None, op, None))
            .collect();
        let mut per_app: BTreeMap<(String, String), (Vec<OrgId>, DayAcc)> = BTreeMap::new();
        let mut classy_calls_per_day = Vec::with_capacity(self.days.len());
        for ((org, day), acc) in self.days {
            classy_calls_per_day.push(DayCalls {
                org,
                day: day.clone(),
                classy_calls: acc.calls,
                runs_without_counts: acc.without,
                budget_share: acc.calls as f64 / BUDGET_PER_DAY as f64,
                busiest_minute: busiest_minute(&acc.intervals),
            });
            let app = apps.get(&org).cloned().unwrap_or_default();
            let (orgs, sum) = per_app.entry((app, day)).or_default();
            orgs.push(org);
            sum.calls += acc.calls;
            sum.without += acc.without;
            sum.intervals.extend(acc.intervals);
        }
        let classy_calls_per_application_day = per_app
            .into_iter()
            .map(|((application, day), (orgs, acc))| ApplicationDayCalls {
                application,
                day,
                orgs,
                classy_calls: acc.calls,
                runs_without_counts: acc.without,
                budget_share: acc.calls as f64 / BUDGET_PER_DAY as f64,
                busiest_minute: busiest_minute(&acc.intervals),
            })
            .collect();
        Usage {
            from: rfc3339(self.from_ms),
            to: rfc3339(self.to_ms),
            budget_per_minute: BUDGET_PER_MINUTE,
            budget_per_day: BUDGET_PER_DAY,
            by_org,
            by_operation,
            classy_calls_per_day,
            classy_calls_per_application_day,
        }
    }
}

/// Bounds on the busiest minute's calls from runs' `(start ms, end ms, calls)` (see
/// [`BusiestMinute`]); `None` without calls.
pub fn busiest_minute(intervals: &[(i64, i64, u64)]) -> Option<BusiestMinute> {
    let mut upper: BTreeMap<i64, u64> = BTreeMap::new();
    let mut lower: BTreeMap<i64, u64> = BTreeMap::new();
    for &(start, end, calls) in intervals {
        let first = start.div_euclid(60_000);
        let last = end.max(start).div_euclid(60_000);
        for m in first..=last {
            *upper.entry(m).or_default() += calls;
        }
        if first == last {
            *lower.entry(first).or_default() += calls;
        }
    }
    // The earliest minute with the highest upper bound.
    let (minute, at_most) = upper
        .iter()
        .fold(None::<(i64, u64)>, |best, (&m, &c)| match best {
            Some((_, b)) if b >= c => best,
            _ => Some((m, c)),
        })?;
    Some(BusiestMinute {
        minute: rfc3339(minute * 60_000),
        at_least: lower.values().copied().max().unwrap_or(0),
        at_most,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(org: OrgId, operation: Operation, subject: &str, start: i64, dur: u64) -> OpRecord {
        OpRecord {
            id: format!("{start}"),
            org,
            operation,
            subject: subject.into(),
            started_at_ms: start,
            duration_ms: dur,
            records: Some(10),
            classy_calls: Some(3),
            mailchimp_calls: Some(0),
            destination_calls: None,
            error: None,
        }
    }

    #[test]
    fn nearest_rank_percentiles_match_hand_computed_values() {
        // n = 10: p50 -> rank 5, p95 -> rank ⌈9.5⌉ = 10, p99 -> rank ⌈9.9⌉ = 10.
        let v: Vec<u64> = (1..=10).map(|i| i * 10).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(100));
        assert_eq!(percentile(&v, 99), Some(100));
        // n = 4: p50 -> rank 2 (not the mean of 2 and 3).
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        // n = 1: every percentile is the value.
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
        // n = 200: p95 -> rank 190, p99 -> rank 198.
        let v: Vec<u64> = (1..=200).collect();
        assert_eq!(percentile(&v, 95), Some(190));
        assert_eq!(percentile(&v, 99), Some(198));
        // Unsorted input is sorted by Percentiles::of.
        let p = Percentiles::of(vec![30, 10, 20]);
        assert_eq!((p.p50, p.p95, p.p99), (Some(20), Some(30), Some(30)));
    }

    /// An independent definition: the smallest value with at least p% of the values at or
    /// below it (computed in floating point by counting, not by rank arithmetic).
    fn by_counting(values: &[u64], p: f64) -> Option<u64> {
        let mut s = values.to_vec();
        s.sort_unstable();
        let n = s.len() as f64;
        s.iter()
            .copied()
            .find(|&x| s.iter().filter(|&&y| y <= x).count() as f64 >= p / 100.0 * n - 1e-9)
    }

    #[test]
    fn percentiles_agree_with_an_independent_computation() {
        let mut rng = fastrand::Rng::with_seed(14);
        for _ in 0..300 {
            let n = rng.usize(1..120);
            let values: Vec<u64> = (0..n).map(|_| rng.u64(0..50)).collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            for p in [50u32, 95, 99, 1, 100, 33] {
                assert_eq!(
                    percentile(&sorted, p),
                    by_counting(&values, f64::from(p)),
                    "p{p} of {values:?}"
                );
            }
        }
    }

    #[test]
    fn periods_accept_days_and_hours_and_refuse_the_rest() {
        assert_eq!("30d".parse::<UsagePeriod>().unwrap().secs, 30 * 86_400);
        assert_eq!("12h".parse::<UsagePeriod>().unwrap().secs, 12 * 3_600);
        assert_eq!("90d".parse::<UsagePeriod>().unwrap().secs, MAX_PERIOD_SECS);
        for bad in [
            "",
            "d",
            "30",
            "0d",
            "-1d",
            "3w",
            "1.5d",
            "30 d",
            "99999999999999999d",
        ] {
            assert!(bad.parse::<UsagePeriod>().is_err(), "{bad}");
        }
        let e = "91d".parse::<UsagePeriod>().unwrap_err().to_string();
        assert!(e.contains("90 days"), "{e}");
    }

    #[test]
    fn aggregates_per_org_subject_and_operation_with_unknown_counts_left_out() {
        let mut b = UsageBuilder::new(0, 10_000_000);
        b.add(&op(1, Operation::Sync, "supporters", 1_000, 100));
        b.add(&op(1, Operation::Sync, "supporters", 2_000, 300));
        let mut failed = op(1, Operation::Sync, "supporters", 3_000, 200);
        failed.error = Some("boom".into());
        failed.records = Some(0);
        b.add(&failed);
        b.add(&op(2, Operation::Sync, "campaigns", 4_000, 50));
        let mut push = op(1, Operation::Push, "mailchimp", 5_000, 700);
        push.classy_calls = Some(0);
        push.mailchimp_calls = Some(9);
        b.add(&push);
        let mut health = op(1, Operation::Health, "classy", 6_000, 40);
        health.records = None;
        health.classy_calls = None;
        health.mailchimp_calls = None;
        b.add(&health);
        // Outside the period: ignored.
        b.add(&op(1, Operation::Sync, "supporters", 20_000_000, 1));
        let names = BTreeMap::from([(1, "One".to_string())]);
        let apps = BTreeMap::from([(1, "app-a".to_string()), (2, "app-a".to_string())]);
        let u = b.finish(&names, &apps);

        assert_eq!(u.by_org.len(), 4);
        let sup = &u.by_org[0];
        assert_eq!((sup.org, sup.operation), (Some(1), Operation::Sync));
        assert_eq!(sup.subject.as_deref(), Some("supporters"));
        assert_eq!(sup.org_name.as_deref(), Some("One"));
        assert_eq!(
            (sup.runs, sup.records, sup.classy_calls),
            (3, Some(20), Some(9))
        );
        assert_eq!(sup.errors, 1);
        assert!((sup.error_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            sup.duration_ms,
            Percentiles {
                p50: Some(200),
                p95: Some(300),
                p99: Some(300)
            }
        );
        let h = u
            .by_org
            .iter()
            .find(|r| r.operation == Operation::Health)
            .unwrap();
        assert_eq!(
            (h.records, h.classy_calls, h.runs_without_counts),
            (None, None, 1)
        );
        let other = u.by_org.iter().find(|r| r.org == Some(2)).unwrap();
        assert_eq!(other.org_name.as_deref(), Some(""));

        let sync = &u.by_operation[0];
        assert_eq!(
            (sync.operation, sync.runs, sync.classy_calls),
            (Operation::Sync, 4, Some(12))
        );
        assert!(sync.org.is_none() && sync.subject.is_none());
        let push = u
            .by_operation
            .iter()
            .find(|r| r.operation == Operation::Push)
            .unwrap();
        assert_eq!(
            (push.mailchimp_calls, push.classy_calls),
            (Some(9), Some(0))
        );

        // Per day: org 1 made 3 × 3 sync calls, 0 push calls; the health run's are unknown.
        let d = &u.classy_calls_per_day[0];
        assert_eq!((d.org, d.day.as_str()), (1, "1970-01-01"));
        assert_eq!((d.classy_calls, d.runs_without_counts), (9, 1));
        assert!((d.budget_share - 9.0 / 2_592_000.0).abs() < 1e-15);
        // Both organizations read with app-a: 9 + 3 calls that day, against one budget.
        let a = &u.classy_calls_per_application_day;
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].application.as_str(), &a[0].orgs),
            ("app-a", &vec![1, 2])
        );
        assert_eq!((a[0].classy_calls, a[0].runs_without_counts), (12, 1));
        // Runs of both overlap minute 0 (starts 1 s..6 s, each under a second).
        assert_eq!(a[0].busiest_minute.as_ref().unwrap().at_most, 12);
        let json = serde_json::to_value(&u).unwrap();
        let p = &json["by_org"][0]["duration_ms"];
        assert_eq!(
            (p["p50"].as_u64(), p["p95"].as_u64(), p["p99"].as_u64()),
            (Some(200), Some(300), Some(300))
        );
    }

    #[test]
    fn busiest_minute_is_bounded_by_the_runs_inside_and_overlapping_it() {
        // Minute 0: a run wholly inside (5 calls); a run from 0:50 to 1:10 (8 calls) overlaps
        // minutes 0 and 1; minute 1 also holds a run of 4 wholly inside.
        let runs = [(1_000, 2_000, 5), (50_000, 70_000, 8), (61_000, 62_000, 4)];
        let b = busiest_minute(&runs).unwrap();
        // Upper: minute 0 = 5 + 8 = 13, minute 1 = 8 + 4 = 12 -> 13 at 00:00.
        assert_eq!(b.at_most, 13);
        assert_eq!(b.minute, "1970-01-01T00:00:00Z");
        // Lower: minute 0 = 5, minute 1 = 4 -> 5.
        assert_eq!(b.at_least, 5);
        assert_eq!(busiest_minute(&[]), None);
    }

    #[test]
    fn only_the_mailchimp_plugin_makes_mailchimp_calls() {
        assert_eq!(push_mailchimp_calls("mailchimp", Some(4)), Some(4));
        assert_eq!(push_mailchimp_calls("mailchimp", None), None);
        assert_eq!(push_mailchimp_calls("change-feed", None), Some(0));
    }
}
