//! The health monitor: a registry of checks, each run concurrently under its own timeout, so
//! one hanging check costs its timeout and nothing more. Results add up to one
//! `application/health+json` report (domain/health.rs); history keeps each report's summary
//! for 90 days.

pub mod checks;
pub mod history;

use super::{Datastore, EngineError};
use crate::domain::health::{CheckResult, HealthReport, HealthStatus, Thresholds};
use crate::domain::Timestamp;
use crate::ports::{ClassySource, JobQueue, SecretStore};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use checks::{DestinationHealth, DestinationProbe};

/// Default time one check may take.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One check. It may report several observations (a queue: depth, age, dead letters).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// The key reported if the check times out (`classy:responseTime`).
    fn key(&self) -> String;
    /// The components whose observations it reports (for `health <component>`).
    fn components(&self) -> Vec<String> {
        vec![component_of(&self.key()).to_string()]
    }
    /// Which instance (`org 7`), if any.
    fn component_id(&self) -> Option<String> {
        None
    }
    fn component_type(&self) -> &'static str {
        "component"
    }
    fn critical(&self) -> bool {
        false
    }
    fn org(&self) -> Option<u64> {
        None
    }
    /// Overrides the monitor's timeout for this check.
    fn timeout(&self) -> Option<Duration> {
        None
    }
    async fn run(&self) -> Vec<CheckResult>;
}

#[derive(Clone)]
pub struct HealthMonitor {
    pub data: Datastore,
    pub secrets: Arc<dyn SecretStore>,
    /// Classy, read once per enabled organization (token and one minimal call).
    pub source: Arc<dyn ClassySource>,
    pub queue: Option<Arc<dyn JobQueue>>,
    pub destinations: Option<Arc<dyn DestinationProbe>>,
    /// Checks added by the caller (plugins, tests).
    pub extra: Vec<Arc<dyn HealthCheck>>,
    pub timeout: Duration,
    pub thresholds: Thresholds,
}

impl HealthMonitor {
    pub fn new(
        data: Datastore,
        secrets: Arc<dyn SecretStore>,
        source: Arc<dyn ClassySource>,
    ) -> Self {
        let thresholds = Thresholds {
            max_consecutive_failures: data.options.max_consecutive_failures,
            ..Thresholds::default()
        };
        HealthMonitor {
            data,
            secrets,
            source,
            queue: None,
            destinations: None,
            extra: Vec::new(),
            timeout: DEFAULT_CHECK_TIMEOUT,
            thresholds,
        }
    }

    pub fn with_queue(mut self, queue: Arc<dyn JobQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    pub fn with_destinations(mut self, probe: Arc<dyn DestinationProbe>) -> Self {
        self.destinations = Some(probe);
        self
    }

    pub fn with_check(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.extra.push(check);
        self
    }

    /// The registry: deployment-wide checks, then per-organization checks.
    pub async fn registry(&self) -> Vec<Arc<dyn HealthCheck>> {
        checks::registry(self).await
    }

    /// Runs every check (or those of one component, e.g. `classy`, `store`, `sync`).
    pub async fn run(&self, component: Option<&str>) -> HealthReport {
        let started = Instant::now();
        let checks: Vec<_> = self
            .registry()
            .await
            .into_iter()
            .filter(|c| component.is_none_or(|w| c.components().iter().any(|x| x == w)))
            .collect();
        let now = Timestamp(self.data.clock.now()).to_rfc3339();
        let runs = checks.iter().map(|c| {
            let limit = c.timeout().unwrap_or(self.timeout);
            let now = now.clone();
            async move {
                match tokio::time::timeout(limit, c.run()).await {
                    Ok(results) => results,
                    Err(_) => vec![timed_out(c.as_ref(), limit, &now)],
                }
            }
        });
        let mut results: Vec<CheckResult> = futures::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect();
        for r in &mut results {
            if r.time.is_empty() {
                r.time = now.clone();
            }
        }
        let report = HealthReport::from_results(results, now, started.elapsed().as_millis() as u64);
        match component {
            Some(c) => report.only(c),
            None => report,
        }
    }

    /// Runs everything, records the summary, and says whether the overall status changed.
    pub async fn run_and_record(
        &self,
    ) -> Result<(HealthReport, Option<HealthStatus>, bool), EngineError> {
        let report = self.run(None).await;
        let (previous, changed) = self.data.record_health(&report).await?;
        Ok((report, previous, changed))
    }
}

fn component_of(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

fn timed_out(c: &dyn HealthCheck, limit: Duration, now: &str) -> CheckResult {
    let mut r = CheckResult::new(c.key(), c.component_type(), HealthStatus::Fail)
        .observed(limit.as_millis() as u64, "ms")
        .output(format!("timed out after {} ms", limit.as_millis()))
        .recommend("the component did not answer in time; check its availability and latency");
    r.component_id = c.component_id();
    r.critical = c.critical();
    r.org = c.org();
    r.time = now.to_string();
    r
}
