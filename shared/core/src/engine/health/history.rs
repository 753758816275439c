//! Health history: a compact summary of every recorded report (`HEALTH/H#<ms>`, kept 90 days)
//! for trends, and the last overall status (`HEALTH/LAST`) to detect transitions. The latest
//! report's results are kept too (`HEALTH/R#<ms>#<part>`, parts under 200 KB, 2 hours), so the
//! alert rules can be applied to it without running the checks again (the alert function
//! calls neither Classy nor a destination).

use crate::domain::health::{is_transition, CheckResult, HealthReport, HealthStatus};
use crate::engine::{Datastore, EngineError};
use crate::ports::store::{Condition, Item, SkRange};
use serde::{Deserialize, Serialize};

pub use crate::domain::keys::HEALTH_PK;
use crate::domain::keys::{
    health_history_sk, health_results_prefix, health_results_sk, prefix_end, HEALTH_HISTORY_PREFIX,
    HEALTH_LAST_SK as LAST_SK,
};
pub const HISTORY_RETENTION_SECS: i64 = 90 * 24 * 3600;
/// The results of a recorded report are kept this long.
pub const RESULTS_TTL_SECS: i64 = 2 * 3600;
/// One part of the recorded results holds at most about this many bytes of JSON (a DynamoDB
/// item holds 400 KB).
pub const RESULTS_PART_BYTES: usize = 200 * 1024;

/// One non-passing observation, kept in history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub key: String,
    pub component_id: Option<String>,
    pub status: HealthStatus,
    pub output: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSummary {
    pub status: HealthStatus,
    pub time: String,
    pub duration_ms: u64,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    /// At most 50, so an item stays small with many organizations.
    pub problems: Vec<Problem>,
    /// The report's results are kept under `R#<results_at_ms>#<part>`, in this many parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_at_ms: Option<i64>,
    #[serde(default)]
    pub results_parts: u32,
}

impl HealthSummary {
    pub fn of(report: &HealthReport) -> Self {
        HealthSummary {
            status: report.status,
            time: report.time.clone(),
            duration_ms: report.duration_ms,
            pass: report.count(HealthStatus::Pass),
            warn: report.count(HealthStatus::Warn),
            fail: report.count(HealthStatus::Fail),
            problems: report
                .results()
                .filter(|r| r.status != HealthStatus::Pass)
                .take(50)
                .map(|r| Problem {
                    key: r.key,
                    component_id: r.component_id,
                    status: r.status,
                    output: r.output,
                })
                .collect(),
            results_at_ms: None,
            results_parts: 0,
        }
    }
}

/// The report's results as `[key, result]` JSON arrays of about [`RESULTS_PART_BYTES`] each.
fn result_parts(report: &HealthReport) -> Result<Vec<String>, EngineError> {
    let mut parts = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut len = 0;
    for r in report.results() {
        let one = serde_json::to_string(&(&r.key, &r))
            .map_err(|e| EngineError::Invalid(format!("health result: {e}")))?;
        if len + one.len() > RESULTS_PART_BYTES && !cur.is_empty() {
            parts.push(format!("[{}]", cur.join(",")));
            cur.clear();
            len = 0;
        }
        len += one.len() + 1;
        cur.push(one);
    }
    if !cur.is_empty() || parts.is_empty() {
        parts.push(format!("[{}]", cur.join(",")));
    }
    Ok(parts)
}

impl Datastore {
    /// Saves the summary and the new last status; returns the previous status and whether
    /// this is a transition.
    pub async fn record_health(
        &self,
        report: &HealthReport,
    ) -> Result<(Option<HealthStatus>, bool), EngineError> {
        let now_ms = self.clock.now().timestamp_millis();
        let mut summary = HealthSummary::of(report);
        // The results first, then the summary that names them: a reader never finds a
        // summary whose parts are not all written.
        let parts = result_parts(report)?;
        let results_expire = now_ms / 1000 + RESULTS_TTL_SECS;
        for (i, part) in parts.iter().enumerate() {
            self.store
                .put(
                    Item::new(HEALTH_PK, health_results_sk(now_ms, i as u32), part.clone())
                        .with_expiry(results_expire),
                    Condition::Always,
                )
                .await?;
        }
        summary.results_at_ms = Some(now_ms);
        summary.results_parts = parts.len() as u32;
        let previous: Option<HealthStatus> = match self.store.get(HEALTH_PK, LAST_SK).await? {
            Some(i) => Some(i.parse::<HealthSummary>()?.status),
            None => None,
        };
        let expires = now_ms / 1000 + HISTORY_RETENTION_SECS;
        self.store
            .put(
                Item::json(HEALTH_PK, health_history_sk(now_ms), &summary).with_expiry(expires),
                Condition::Always,
            )
            .await?;
        self.store
            .put(Item::json(HEALTH_PK, LAST_SK, &summary), Condition::Always)
            .await?;
        Ok((previous, is_transition(previous, report.status)))
    }

    /// The most recently recorded summary.
    pub async fn last_health(&self) -> Result<Option<HealthSummary>, EngineError> {
        match self.store.get(HEALTH_PK, LAST_SK).await? {
            Some(i) => Ok(Some(i.parse()?)),
            None => Ok(None),
        }
    }

    /// The latest recorded report (its results as they were recorded) and when it was
    /// recorded (Unix seconds); `None` if none was, or its results are gone.
    pub async fn recorded_report(&self) -> Result<Option<(HealthReport, i64)>, EngineError> {
        let Some(last) = self.last_health().await? else {
            return Ok(None);
        };
        let Some(at_ms) = last.results_at_ms else {
            return Ok(None);
        };
        let mut items = Vec::new();
        crate::ports::store::for_each_page(
            self.store.as_ref(),
            HEALTH_PK,
            &SkRange::prefix(health_results_prefix(at_ms)),
            100,
            |page| {
                items.extend(page);
                Ok(())
            },
        )
        .await?;
        if items.len() != last.results_parts as usize {
            return Ok(None);
        }
        let mut results = Vec::new();
        for i in items {
            let part: Vec<(String, CheckResult)> = serde_json::from_str(&i.data)
                .map_err(|e| EngineError::Invalid(format!("recorded health results: {e}")))?;
            results.extend(part.into_iter().map(|(key, r)| CheckResult { key, ..r }));
        }
        let report = HealthReport::from_results(results, last.time, last.duration_ms);
        Ok(Some((report, at_ms / 1000)))
    }

    /// Recorded summaries, newest first, at most `limit`, no older than 90 days. Reads a
    /// day back, then a wider window, so a short history does not read 90 days of items.
    pub async fn health_history(&self, limit: usize) -> Result<Vec<HealthSummary>, EngineError> {
        let now = self.clock.unix();
        let mut days = 1;
        loop {
            let since = (now - (days * 86_400).min(HISTORY_RETENTION_SECS)) * 1000;
            let mut items = Vec::new();
            crate::ports::store::for_each_page(
                self.store.as_ref(),
                HEALTH_PK,
                &SkRange::Between(health_history_sk(since), prefix_end(HEALTH_HISTORY_PREFIX)),
                1000,
                |page| {
                    items.extend(page);
                    Ok(())
                },
            )
            .await?;
            if items.len() >= limit || days * 86_400 >= HISTORY_RETENTION_SECS {
                return items
                    .iter()
                    .rev()
                    .take(limit)
                    .map(|i| i.parse().map_err(EngineError::from))
                    .collect();
            }
            days *= 4;
        }
    }
}
