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
    /// Classy, read once per enabled organization (token and one minimal call); `None`: no
    /// Classy check (the alert function's monitor, see [`HealthMonitor::run_with_recorded`]).
    pub source: Option<Arc<dyn ClassySource>>,
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
        Self::build(data, secrets, Some(source))
    }

    fn build(
        data: Datastore,
        secrets: Arc<dyn SecretStore>,
        source: Option<Arc<dyn ClassySource>>,
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

    /// A monitor that calls neither Classy nor (unless given a probe) a destination: the
    /// checks of the store, the secrets, the queue and the recorded sync state.
    pub fn without_classy(data: Datastore, secrets: Arc<dyn SecretStore>) -> Self {
        Self::build(data, secrets, None)
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
        let (results, now) = self.run_checks(checks).await;
        let report = HealthReport::from_results(results, now, started.elapsed().as_millis() as u64);
        match component {
            Some(c) => report.only(c),
            None => report,
        }
    }

    /// Runs `checks` concurrently, each under its timeout; the results and the time stamp.
    async fn run_checks(&self, checks: Vec<Arc<dyn HealthCheck>>) -> (Vec<CheckResult>, String) {
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
        (results, now)
    }

    /// The report the alert rules look at without spending any API budget: every check of
    /// this monitor that calls neither Classy nor a destination runs now; the results of those
    /// that do ([`RECORDED_CHECKS`]) come from the latest recorded report (the health-check
    /// function records one every 5 minutes). `health:recorded` fails (critical) when that
    /// report is older than [`RECORDED_MAX_AGE_SECS`] or missing: the health checks stopped.
    pub async fn run_with_recorded(&self) -> Result<HealthReport, EngineError> {
        let started = Instant::now();
        let local = HealthMonitor {
            source: None,
            destinations: None,
            ..self.clone()
        };
        let checks = local
            .registry()
            .await
            .into_iter()
            .filter(|c| !RECORDED_CHECKS.contains(&c.key().as_str()))
            .collect();
        let (mut results, time) = local.run_checks(checks).await;
        let now = self.data.clock.unix();
        let recorded = self.data.recorded_report().await?;
        let age = recorded.as_ref().map(|(_, at)| now - at);
        if let Some((report, _)) = &recorded {
            results.extend(
                report
                    .results()
                    .filter(|r| RECORDED_CHECKS.contains(&r.key.as_str())),
            );
        }
        let mut r = match age {
            Some(a) if a <= RECORDED_MAX_AGE_SECS => {
                CheckResult::new(RECORDED_CHECK, "system", HealthStatus::Pass)
            }
            Some(a) => {
                CheckResult::new(RECORDED_CHECK, "system", HealthStatus::Fail).output(format!(
                    "the latest health report was recorded {} minutes ago",
                    a / 60
                ))
            }
            None => CheckResult::new(RECORDED_CHECK, "system", HealthStatus::Fail)
                .output("no health report is recorded".to_string()),
        };
        if let Some(a) = age {
            r = r.observed(a.max(0) as u64, "s");
        }
        if r.status != HealthStatus::Pass {
            r = r.recommend(
                "the health checks stopped: check the health-check function (its schedule, \
                 errors and logs), or `classy-sync run` locally",
            );
        }
        r.critical = true;
        r.time = time.clone();
        results.push(r);
        Ok(HealthReport::from_results(
            results,
            time,
            started.elapsed().as_millis() as u64,
        ))
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

/// The checks whose results [`HealthMonitor::run_with_recorded`] takes from the recorded
/// report instead of running them: those that call out (the Classy API per organization, the
/// destinations) and the secret store probe (the health-check function's access, not the
/// alert function's, is the one that matters).
pub const RECORDED_CHECKS: [&str; 3] = [
    "classy:responseTime",
    "destination:reachable",
    "secrets:access",
];
/// The recorded report is this old at most before `health:recorded` fails (three runs of the
/// 5-minute health check).
pub const RECORDED_MAX_AGE_SECS: i64 = 15 * 60;
/// The check that says whether a recent health report is recorded.
pub const RECORDED_CHECK: &str = "health:recorded";

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
