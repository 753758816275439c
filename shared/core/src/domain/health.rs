//! Health as data: statuses, one check's observation in the `application/health+json` shape
//! (draft-inadarei-api-health-check), how observations add up to an overall status, and the
//! pure thresholds that turn a measurement into pass / warn / fail.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `pass` < `warn` < `fail`: the worse of two statuses is the greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Pass,
    Warn,
    Fail,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Pass => "pass",
            HealthStatus::Warn => "warn",
            HealthStatus::Fail => "fail",
        }
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation of one component, as health+json writes it under `checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// `<component>:<measurement>`, the key under `checks` (e.g. `classy:responseTime`).
    #[serde(skip)]
    pub key: String,
    /// Which instance: `org 42`, `org 42 supporters`, `queue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    /// `datastore`, `queue`, `system`, `component`.
    pub component_type: String,
    pub status: HealthStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    /// RFC 3339.
    pub time: String,
    /// Why it is not `pass` (never contains a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Whether a `fail` here makes the whole service `fail` (otherwise it only warns).
    #[serde(default)]
    pub critical: bool,
    /// The organization (and entity) this is about, for alert grouping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// What an operator should do (shown with `--detailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
}

impl CheckResult {
    pub fn new(key: impl Into<String>, component_type: &str, status: HealthStatus) -> Self {
        CheckResult {
            key: key.into(),
            component_id: None,
            component_type: component_type.to_string(),
            status,
            observed_value: None,
            observed_unit: None,
            time: String::new(),
            output: None,
            critical: false,
            org: None,
            entity: None,
            recommendation: None,
        }
    }

    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.component_id = Some(id.into());
        self
    }

    pub fn observed(mut self, value: impl Into<serde_json::Value>, unit: &str) -> Self {
        self.observed_value = Some(value.into());
        self.observed_unit = Some(unit.to_string());
        self
    }

    pub fn output(mut self, text: impl Into<String>) -> Self {
        self.output = Some(text.into());
        self
    }

    pub fn critical(mut self) -> Self {
        self.critical = true;
        self
    }

    pub fn for_org(mut self, org: u64, entity: Option<&str>) -> Self {
        self.org = Some(org);
        self.entity = entity.map(str::to_string);
        self
    }

    pub fn recommend(mut self, what: impl Into<String>) -> Self {
        self.recommendation = Some(what.into());
        self
    }

    /// The component part of the key (`classy` in `classy:responseTime`).
    pub fn component(&self) -> &str {
        self.key.split(':').next().unwrap_or(&self.key)
    }

    /// The status this observation contributes to the whole: a non-critical failure warns.
    pub fn contribution(&self) -> HealthStatus {
        match self.status {
            HealthStatus::Fail if !self.critical => HealthStatus::Warn,
            s => s,
        }
    }
}

/// The `application/health+json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub status: HealthStatus,
    pub version: String,
    pub description: String,
    pub time: String,
    /// How long the whole run took.
    pub duration_ms: u64,
    pub checks: BTreeMap<String, Vec<CheckResult>>,
}

impl HealthReport {
    pub fn from_results(results: Vec<CheckResult>, time: String, duration_ms: u64) -> Self {
        let status = overall(&results);
        let mut checks: BTreeMap<String, Vec<CheckResult>> = BTreeMap::new();
        for r in results {
            checks.entry(r.key.clone()).or_default().push(r);
        }
        HealthReport {
            status,
            version: "1".into(),
            description: "classy-sync".into(),
            time,
            duration_ms,
            checks,
        }
    }

    /// Every observation, with its key restored.
    pub fn results(&self) -> impl Iterator<Item = CheckResult> + '_ {
        self.checks.iter().flat_map(|(k, v)| {
            v.iter().map(move |r| CheckResult {
                key: k.clone(),
                ..r.clone()
            })
        })
    }

    /// Only the observations whose component (before `:`) is `component`.
    pub fn only(&self, component: &str) -> HealthReport {
        let results: Vec<CheckResult> = self
            .results()
            .filter(|r| r.component() == component)
            .collect();
        HealthReport::from_results(results, self.time.clone(), self.duration_ms)
    }

    pub fn count(&self, status: HealthStatus) -> usize {
        self.checks
            .values()
            .flatten()
            .filter(|r| r.status == status)
            .count()
    }
}

/// The worst contribution; `pass` when there is nothing to check.
pub fn overall(results: &[CheckResult]) -> HealthStatus {
    results
        .iter()
        .map(CheckResult::contribution)
        .max()
        .unwrap_or(HealthStatus::Pass)
}

/// Thresholds, all overridable; defaults documented in docs/health-and-alerts.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Store round trip that warns, ms.
    pub store_latency_warn_ms: u64,
    /// Oldest queued message that warns, seconds.
    pub queue_age_warn_secs: u64,
    /// Missed intervals after which data is stale (fail); one fewer warns.
    pub stale_after_intervals: u32,
    /// Consecutive failures that disable an organization×entity.
    pub max_consecutive_failures: u32,
    /// Days before a credential expires that warn.
    pub credential_warn_days: i64,
    /// Days before a credential expires that fail.
    pub credential_fail_days: i64,
    /// Failed share of the last hour's runs that fails the error-rate check.
    pub error_rate_fail: f64,
    /// Fewer runs than this in the hour are too few to judge.
    pub error_rate_min_runs: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            store_latency_warn_ms: 1000,
            queue_age_warn_secs: 15 * 60,
            stale_after_intervals: 3,
            max_consecutive_failures: 5,
            credential_warn_days: 30,
            credential_fail_days: 1,
            error_rate_fail: 0.25,
            error_rate_min_runs: 50,
        }
    }
}

/// Data older than `stale_after` intervals fails, one interval fewer warns.
pub fn freshness_status(age_secs: i64, interval_secs: u64, t: &Thresholds) -> HealthStatus {
    let n = t.stale_after_intervals.max(1) as i64;
    let i = interval_secs as i64;
    if age_secs > n * i {
        HealthStatus::Fail
    } else if age_secs > (n - 1).max(1) * i {
        HealthStatus::Warn
    } else {
        HealthStatus::Pass
    }
}

/// Any failure streak warns; reaching the disable threshold fails.
pub fn streak_status(consecutive: u32, t: &Thresholds) -> HealthStatus {
    if consecutive >= t.max_consecutive_failures {
        HealthStatus::Fail
    } else if consecutive > 0 {
        HealthStatus::Warn
    } else {
        HealthStatus::Pass
    }
}

/// Days left (may be negative) to a status.
pub fn credential_status(days_left: f64, t: &Thresholds) -> HealthStatus {
    if days_left <= t.credential_fail_days as f64 {
        HealthStatus::Fail
    } else if days_left <= t.credential_warn_days as f64 {
        HealthStatus::Warn
    } else {
        HealthStatus::Pass
    }
}

/// `None` when there were too few runs to judge.
pub fn error_rate_status(failed: u64, total: u64, t: &Thresholds) -> Option<HealthStatus> {
    if total < t.error_rate_min_runs || total == 0 {
        return None;
    }
    let rate = failed as f64 / total as f64;
    Some(if rate > t.error_rate_fail {
        HealthStatus::Fail
    } else if rate > t.error_rate_fail / 2.0 {
        HealthStatus::Warn
    } else {
        HealthStatus::Pass
    })
}

/// Whether the overall status changed (first report counts as a change only if not `pass`).
pub fn is_transition(previous: Option<HealthStatus>, now: HealthStatus) -> bool {
    match previous {
        Some(p) => p != now,
        None => now != HealthStatus::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: HealthStatus, critical: bool) -> CheckResult {
        let c = CheckResult::new("x:y", "component", status);
        if critical {
            c.critical()
        } else {
            c
        }
    }

    #[test]
    fn critical_failures_fail_others_only_warn() {
        assert_eq!(overall(&[]), HealthStatus::Pass);
        assert_eq!(
            overall(&[r(HealthStatus::Pass, true), r(HealthStatus::Fail, false)]),
            HealthStatus::Warn
        );
        assert_eq!(
            overall(&[r(HealthStatus::Warn, false), r(HealthStatus::Fail, true)]),
            HealthStatus::Fail
        );
        assert_eq!(
            overall(&[r(HealthStatus::Warn, true), r(HealthStatus::Pass, false)]),
            HealthStatus::Warn
        );
    }

    #[test]
    fn stale_after_three_missed_intervals() {
        let t = Thresholds::default();
        assert_eq!(freshness_status(1800, 900, &t), HealthStatus::Pass);
        assert_eq!(freshness_status(1801, 900, &t), HealthStatus::Warn);
        assert_eq!(freshness_status(2700, 900, &t), HealthStatus::Warn);
        assert_eq!(freshness_status(2701, 900, &t), HealthStatus::Fail);
    }

    #[test]
    fn streaks_credentials_and_error_rate() {
        let t = Thresholds::default();
        assert_eq!(streak_status(0, &t), HealthStatus::Pass);
        assert_eq!(streak_status(4, &t), HealthStatus::Warn);
        assert_eq!(streak_status(5, &t), HealthStatus::Fail);
        assert_eq!(credential_status(31.0, &t), HealthStatus::Pass);
        assert_eq!(credential_status(30.0, &t), HealthStatus::Warn);
        assert_eq!(credential_status(1.0, &t), HealthStatus::Fail);
        assert_eq!(credential_status(-3.0, &t), HealthStatus::Fail);
        assert_eq!(error_rate_status(40, 49, &t), None);
        assert_eq!(error_rate_status(5, 100, &t), Some(HealthStatus::Pass));
        assert_eq!(error_rate_status(13, 100, &t), Some(HealthStatus::Warn));
        assert_eq!(error_rate_status(26, 100, &t), Some(HealthStatus::Fail));
    }

    #[test]
    fn report_groups_by_key_and_serializes_health_json() {
        let a = CheckResult::new("store:responseTime", "datastore", HealthStatus::Pass)
            .observed(3, "ms")
            .critical();
        let b = CheckResult::new("classy:responseTime", "component", HealthStatus::Fail)
            .id("org 7")
            .output("refused");
        let rep = HealthReport::from_results(vec![a, b], "t".into(), 5);
        assert_eq!(rep.status, HealthStatus::Warn);
        let v = serde_json::to_value(&rep).unwrap();
        assert_eq!(v["status"], "warn");
        assert_eq!(v["checks"]["store:responseTime"][0]["observedUnit"], "ms");
        assert_eq!(
            v["checks"]["classy:responseTime"][0]["componentId"],
            "org 7"
        );
        assert_eq!(rep.only("store").status, HealthStatus::Pass);
        assert_eq!(rep.results().count(), 2);
    }

    #[test]
    fn transitions_only_on_change() {
        assert!(!is_transition(None, HealthStatus::Pass));
        assert!(is_transition(None, HealthStatus::Warn));
        assert!(!is_transition(Some(HealthStatus::Warn), HealthStatus::Warn));
        assert!(is_transition(Some(HealthStatus::Warn), HealthStatus::Pass));
    }
}
