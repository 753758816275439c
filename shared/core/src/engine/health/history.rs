//! Health history: a compact summary of every recorded report (`HEALTH/H#<ms>`, kept 90 days)
//! for trends, and the last overall status (`HEALTH/LAST`) to detect transitions.

use crate::domain::health::{is_transition, HealthReport, HealthStatus};
use crate::engine::{Datastore, EngineError};
use crate::ports::store::{Condition, Item, SkRange};
use serde::{Deserialize, Serialize};

pub use crate::domain::keys::HEALTH_PK;
use crate::domain::keys::{
    health_history_sk, prefix_end, HEALTH_HISTORY_PREFIX, HEALTH_LAST_SK as LAST_SK,
};
pub const HISTORY_RETENTION_SECS: i64 = 90 * 24 * 3600;

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
        }
    }
}

impl Datastore {
    /// Saves the summary and the new last status; returns the previous status and whether
    /// this is a transition.
    pub async fn record_health(
        &self,
        report: &HealthReport,
    ) -> Result<(Option<HealthStatus>, bool), EngineError> {
        let now_ms = self.clock.now().timestamp_millis();
        let summary = HealthSummary::of(report);
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
