//! The checks: store round trip, secret store access, queue depth / age / dead letters, per
//! organization the Classy API (token and one minimal call), sync state (freshness, failure
//! streaks, credential expiry, destinations' compliance refusals), destinations through a probe the
//! destination plugins provide, and the deployment's error rate over the last hour.

use super::{HealthCheck, HealthMonitor};
use crate::domain::health::{
    credential_status, error_rate_status, freshness_status, streak_status, CheckResult,
    HealthStatus, Thresholds,
};
use crate::domain::keys::{
    cursor_sk, fail_sk, health_probe_sk, org_pk, prefix_end, run_prefix, run_sk, HEALTH_PK,
};
use crate::domain::schedule::interval;
use crate::domain::usage::Operation;
use crate::domain::{Entity, OrgId, Organization};
use crate::engine::credentials::{CredentialInfo, CREDENTIAL_SK};
use crate::engine::orgs::app_credentials;
use crate::engine::state::{Cursor, FailureState};
use crate::engine::sync::{SyncOutcome, SyncReport};
use crate::engine::Datastore;
use crate::ports::store::{Condition, Item, SkRange};
use crate::ports::{ClassySource, JobQueue, ListQuery, SecretError, SecretStore};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;

pub use crate::ports::DestinationHealth;

/// Plugged in by the destination plugins: probes every enabled destination of an organization.
#[async_trait]
pub trait DestinationProbe: Send + Sync {
    async fn probe(&self, org: OrgId) -> Vec<DestinationHealth>;
}

/// Compliance refusals (records a destination refuses for the recipient's compliance state,
/// its `compliance_skipped` count) are counted per organization and hour under
/// `ORG#<id>/COUNTER#destination-compliance#<YYYYMMDDHH>` as `{"count": n}` (written after
/// each push); this many in the last two hour buckets fails the check.
pub const COMPLIANCE_SPIKE: u64 = 10;

pub fn compliance_counter_sk(hour_unix: i64) -> String {
    crate::domain::keys::counter_sk("destination-compliance", hour_unix)
}

pub(super) async fn registry(m: &HealthMonitor) -> Vec<Arc<dyn HealthCheck>> {
    let e = &m.data;
    let mut checks: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(StoreCheck(e.clone(), m.thresholds.store_latency_warn_ms)),
        Arc::new(SecretsCheck(m.secrets.clone())),
    ];
    if let Some(q) = &m.queue {
        checks.push(Arc::new(QueueCheck {
            queue: q.clone(),
            t: m.thresholds.clone(),
        }));
    }
    // If organizations cannot be listed, the store check says why.
    let orgs = e.list_orgs().await.unwrap_or_default();
    let enabled: Vec<Organization> = orgs.into_iter().filter(|o| o.is_enabled()).collect();
    checks.push(Arc::new(ErrorRateCheck {
        data: e.clone(),
        orgs: enabled.iter().map(|o| o.id).collect(),
        t: m.thresholds.clone(),
    }));
    for org in enabled {
        if let Some(source) = &m.source {
            checks.push(Arc::new(ClassyCheck {
                data: e.clone(),
                secrets: m.secrets.clone(),
                source: source.clone(),
                org: org.clone(),
            }));
        }
        if let Some(p) = &m.destinations {
            checks.push(Arc::new(DestinationCheck {
                probe: p.clone(),
                org: org.id,
            }));
        }
        checks.push(Arc::new(OrgStateCheck {
            data: e.clone(),
            org,
            t: m.thresholds.clone(),
        }));
    }
    checks.extend(m.extra.iter().cloned());
    checks
}

/// The store and the round trip (ms) that warns.
struct StoreCheck(Datastore, u64);

#[async_trait]
impl HealthCheck for StoreCheck {
    fn key(&self) -> String {
        "store:responseTime".into()
    }
    fn component_type(&self) -> &'static str {
        "datastore"
    }
    fn critical(&self) -> bool {
        true
    }
    async fn run(&self) -> Vec<CheckResult> {
        let store = &self.0.store;
        let t0 = Instant::now();
        let sk = health_probe_sk(&uuid::Uuid::new_v4().simple().to_string());
        let now = self.0.clock.unix();
        let round_trip = async {
            store
                .put(
                    Item::new(HEALTH_PK, &sk, "{}").with_expiry(now + 3600),
                    Condition::Always,
                )
                .await?;
            let back = store.get(HEALTH_PK, &sk).await?;
            store.delete(HEALTH_PK, &sk, Condition::Always).await?;
            Ok::<_, crate::ports::StoreError>(back.is_some())
        }
        .await;
        let ms = t0.elapsed().as_millis() as u64;
        let r = CheckResult::new(self.key(), "datastore", HealthStatus::Pass)
            .observed(ms, "ms")
            .critical();
        vec![match round_trip {
            Ok(true) if ms > self.1 => CheckResult {
                status: HealthStatus::Warn,
                ..r.output(format!("round trip took {ms} ms"))
            },
            Ok(true) => r,
            Ok(false) => CheckResult {
                status: HealthStatus::Fail,
                ..r.output("an item written was not read back")
            },
            Err(e) => CheckResult {
                status: HealthStatus::Fail,
                ..r.output(e.to_string())
                    .recommend("the store is unreachable: check the database file or DynamoDB table and permissions")
            },
        }]
    }
}

struct SecretsCheck(Arc<dyn SecretStore>);

#[async_trait]
impl HealthCheck for SecretsCheck {
    fn key(&self) -> String {
        "secrets:access".into()
    }
    fn component_type(&self) -> &'static str {
        "system"
    }
    fn critical(&self) -> bool {
        true
    }
    async fn run(&self) -> Vec<CheckResult> {
        let t0 = Instant::now();
        // A name that never exists: "not found" proves the store answers.
        let res = self.0.get("classy-sync/health/probe").await;
        let ms = t0.elapsed().as_millis() as u64;
        let r = CheckResult::new(self.key(), "system", HealthStatus::Pass)
            .observed(ms, "ms")
            .critical();
        vec![match res {
            Ok(_) | Err(SecretError::NotFound(_)) => r,
            Err(e) => CheckResult {
                status: HealthStatus::Fail,
                ..r.output(e.to_string())
                    .recommend("check the secrets file permissions or the Secrets Manager policy")
            },
        }]
    }
}

struct QueueCheck {
    queue: Arc<dyn JobQueue>,
    t: Thresholds,
}

#[async_trait]
impl HealthCheck for QueueCheck {
    fn key(&self) -> String {
        "queue:depth".into()
    }
    fn component_type(&self) -> &'static str {
        "queue"
    }
    fn critical(&self) -> bool {
        true
    }
    async fn run(&self) -> Vec<CheckResult> {
        let stats = match self.queue.stats().await {
            Ok(s) => s,
            Err(e) => {
                return vec![CheckResult::new(self.key(), "queue", HealthStatus::Fail)
                    .critical()
                    .output(e.to_string())
                    .recommend("check the queue database or the SQS queue and its permissions")]
            }
        };
        let age = stats.oldest_age_secs.unwrap_or(0);
        let age_status = if age > self.t.queue_age_warn_secs {
            HealthStatus::Warn
        } else {
            HealthStatus::Pass
        };
        let mut age_r = CheckResult::new("queue:oldestAge", "queue", age_status).observed(age, "s");
        if age_status != HealthStatus::Pass {
            age_r = age_r
                .output(format!("the oldest job has waited {age} s"))
                .recommend("workers are not keeping up or not running: check `classy-sync run` or the worker function");
        }
        let mut dead = CheckResult::new(
            "queue:deadLetters",
            "queue",
            if stats.dead > 0 {
                HealthStatus::Warn
            } else {
                HealthStatus::Pass
            },
        )
        .observed(stats.dead, "messages");
        if stats.dead > 0 {
            dead = dead
                .output(format!("{} job(s) in the dead-letter queue", stats.dead))
                .recommend("inspect with `classy-sync dlq list`, fix the cause, then `classy-sync dlq replay`");
        }
        vec![
            CheckResult::new(self.key(), "queue", HealthStatus::Pass)
                .critical()
                .observed(stats.visible + stats.in_flight, "messages"),
            age_r,
            dead,
        ]
    }
}

struct ClassyCheck {
    data: Datastore,
    secrets: Arc<dyn SecretStore>,
    source: Arc<dyn ClassySource>,
    org: Organization,
}

#[async_trait]
impl HealthCheck for ClassyCheck {
    fn key(&self) -> String {
        "classy:responseTime".into()
    }
    fn component_id(&self) -> Option<String> {
        Some(format!("org {}", self.org.id))
    }
    fn org(&self) -> Option<u64> {
        Some(self.org.id)
    }
    async fn run(&self) -> Vec<CheckResult> {
        let started_at_ms = self.data.clock.now().timestamp_millis();
        let t0 = Instant::now();
        let call = async {
            let creds = app_credentials(self.secrets.as_ref(), &self.org).await?;
            let q = ListQuery {
                per_page: 1,
                ..ListQuery::default()
            };
            let (page, requests) = self
                .source
                .list_page_counted(&creds, self.org.id, Entity::Campaigns, &q)
                .await;
            Ok::<_, crate::engine::EngineError>((page, requests))
        }
        .await;
        // Usage analytics: the check's Classy calls, known for a refused call too (none were
        // made when the credential could not be read).
        let (call, calls): (Result<(), crate::engine::EngineError>, _) = match call {
            Ok((page, requests)) => (
                page.map(|_| ()).map_err(Into::into),
                requests.map(u64::from),
            ),
            Err(e) => (Err(e), Some(0)),
        };
        let ms = t0.elapsed().as_millis() as u64;
        // One operation record per organization's Classy check.
        let mut op = self
            .data
            .new_op(self.org.id, Operation::Health, "classy", started_at_ms);
        op.duration_ms = ms;
        op.classy_calls = calls;
        // The destination probe is its own check; this one calls Classy only.
        op.mailchimp_calls = Some(0);
        op.error = call.as_ref().err().map(|e| e.to_string());
        self.data.record_op_logged(&op).await;
        let r = CheckResult::new(self.key(), "component", HealthStatus::Pass)
            .id(format!("org {}", self.org.id))
            .for_org(self.org.id, None)
            .observed(ms, "ms");
        vec![match call {
            Ok(()) => r,
            Err(e) => CheckResult {
                status: HealthStatus::Fail,
                ..r.output(e.to_string()).recommend(
                    "check the organization's Classy application credentials (`classy-sync org add` again to replace them) and its API access",
                )
            },
        }]
    }
}

struct DestinationCheck {
    probe: Arc<dyn DestinationProbe>,
    org: OrgId,
}

#[async_trait]
impl HealthCheck for DestinationCheck {
    fn key(&self) -> String {
        "destination:reachable".into()
    }
    fn component_id(&self) -> Option<String> {
        Some(format!("org {}", self.org))
    }
    fn org(&self) -> Option<u64> {
        Some(self.org)
    }
    async fn run(&self) -> Vec<CheckResult> {
        self.probe
            .probe(self.org)
            .await
            .into_iter()
            .map(|d| {
                let mut r = CheckResult::new(
                    self.key(),
                    "component",
                    if d.ok {
                        HealthStatus::Pass
                    } else {
                        HealthStatus::Fail
                    },
                )
                .id(format!("org {} {}", self.org, d.name))
                .for_org(self.org, None)
                .observed(d.latency_ms, "ms");
                if let Some(o) = d.problem() {
                    r = r
                        .output(o)
                        .recommend("check the destination's API key and list settings");
                }
                r
            })
            .collect()
    }
}

/// Freshness and failure streak per entity, credential expiry and compliance errors: one
/// batched read of the organization's state items.
struct OrgStateCheck {
    data: Datastore,
    org: Organization,
    t: Thresholds,
}

#[async_trait]
impl HealthCheck for OrgStateCheck {
    fn key(&self) -> String {
        "sync:freshness".into()
    }
    fn components(&self) -> Vec<String> {
        ["sync", "credential", "destination"]
            .map(String::from)
            .to_vec()
    }
    fn component_id(&self) -> Option<String> {
        Some(format!("org {}", self.org.id))
    }
    fn org(&self) -> Option<u64> {
        Some(self.org.id)
    }
    async fn run(&self) -> Vec<CheckResult> {
        let id = self.org.id;
        let now = self.data.clock.unix();
        let counters = [
            compliance_counter_sk(now),
            compliance_counter_sk(now - 3600),
        ];
        let mut sks: Vec<String> = Entity::ALL
            .iter()
            .flat_map(|e| [cursor_sk(*e), fail_sk(*e)])
            .collect();
        sks.push(CREDENTIAL_SK.to_string());
        sks.extend(counters.iter().cloned());
        let items = match self.data.store.batch_get(&org_pk(id), &sks).await {
            Ok(i) => i,
            Err(e) => {
                return vec![
                    CheckResult::new(self.key(), "component", HealthStatus::Fail)
                        .id(format!("org {id}"))
                        .for_org(id, None)
                        .output(e.to_string()),
                ]
            }
        };
        let find = |sk: &str| items.iter().find(|i| i.sk == sk);
        let created = chrono::DateTime::parse_from_rfc3339(&self.org.created_at)
            .map(|t| t.timestamp())
            .unwrap_or(now);
        let mut out = Vec::new();
        for e in Entity::ALL {
            let cursor: Cursor = find(&cursor_sk(e))
                .and_then(|i| i.parse().ok())
                .unwrap_or_default();
            let fails: FailureState = find(&fail_sk(e))
                .and_then(|i| i.parse().ok())
                .unwrap_or_default();
            let every = interval(&self.org, e).as_secs();
            let age = now - cursor.last_success_at.unwrap_or(created);
            let fresh = freshness_status(age, every, &self.t);
            let mut r = CheckResult::new("sync:freshness", "component", fresh)
                .id(format!("org {id} {e}"))
                .for_org(id, Some(e.name()))
                .observed(age.max(0), "s");
            if fresh != HealthStatus::Pass {
                r = r
                    .output(match cursor.last_success_at {
                        Some(_) => format!("last successful sync {age} s ago (every {every} s)"),
                        None => format!("never synced successfully ({age} s since onboarding)"),
                    })
                    .recommend("check that the scheduler (`classy-sync run` or the dispatch schedule) is running");
            }
            out.push(r);
            let streak = streak_status(fails.consecutive_failures, &self.t);
            let mut s = CheckResult::new("sync:failureStreak", "component", streak)
                .id(format!("org {id} {e}"))
                .for_org(id, Some(e.name()))
                .observed(fails.consecutive_failures, "failures");
            if streak != HealthStatus::Pass {
                let last = fails.last_error.clone().unwrap_or_default();
                s = s.output(if fails.is_disabled() {
                    format!(
                        "disabled after {} consecutive failures; last error: {last}",
                        fails.consecutive_failures
                    )
                } else {
                    format!(
                        "{} consecutive failure(s); last error: {last}",
                        fails.consecutive_failures
                    )
                });
                s = s.recommend(format!(
                    "fix the cause (see the last error), then `classy-sync failures reset {id} --entity {e}`"
                ));
            }
            out.push(s);
            let held = cursor.quarantined;
            let st = if held > 0 {
                HealthStatus::Warn
            } else {
                HealthStatus::Pass
            };
            let mut q = CheckResult::new("sync:quarantinedRecords", "component", st)
                .id(format!("org {id} {e}"))
                .for_org(id, Some(e.name()))
                .observed(held, "records");
            if held > 0 {
                q = q
                    .output(format!(
                        "{held} {e} record(s) from Classy do not decode; they are kept aside and the rest is synced"
                    ))
                    .recommend(format!(
                        "see `classy-sync status {id}` and the sync logs for the failing fields; records are released when Classy sends versions that decode"
                    ));
            }
            out.push(q);
        }
        let cred: CredentialInfo = find(CREDENTIAL_SK)
            .and_then(|i| i.parse().ok())
            .unwrap_or_default();
        if let Some(expiry) = cred.effective_expiry() {
            let days = (expiry.timestamp() - now) as f64 / 86_400.0;
            let st = credential_status(days, &self.t);
            let mut r = CheckResult::new("credential:expiry", "component", st)
                .id(format!("org {id} classy"))
                .for_org(id, None)
                .observed((days * 100.0).round() / 100.0, "d");
            if st != HealthStatus::Pass {
                r = r
                    .output(if days <= 0.0 {
                        format!("the Classy credential expired at {}", expiry.to_rfc3339())
                    } else {
                        format!("the Classy credential expires at {}", expiry.to_rfc3339())
                    })
                    .recommend(format!("regenerate the secret in GoFundMe Pro, then `classy-sync org credentials rotate {id}` (verifies and stores it)"));
            }
            out.push(r);
        }
        let compliance: u64 = counters
            .iter()
            .filter_map(|sk| find(sk))
            .filter_map(|i| i.parse::<serde_json::Value>().ok())
            .filter_map(|v| v["count"].as_u64())
            .sum();
        let st = if compliance >= COMPLIANCE_SPIKE {
            HealthStatus::Fail
        } else {
            HealthStatus::Pass
        };
        let mut r = CheckResult::new("destination:complianceErrors", "component", st)
            .id(format!("org {id}"))
            .for_org(id, None)
            .observed(compliance, "errors");
        if st != HealthStatus::Pass {
            r = r
                .output(format!(
                    "{compliance} compliance refusals from destinations in the last hour"
                ))
                .recommend("review consent data of recently changed supporters");
        }
        out.push(r);
        out
    }
}

/// Failed share of the runs that started in the last hour, over every organization.
struct ErrorRateCheck {
    data: Datastore,
    orgs: Vec<OrgId>,
    t: Thresholds,
}

#[async_trait]
impl HealthCheck for ErrorRateCheck {
    fn key(&self) -> String {
        "sync:errorRate".into()
    }
    async fn run(&self) -> Vec<CheckResult> {
        let since_ms = (self.data.clock.unix() - 3600) * 1000;
        let (mut failed, mut total) = (0u64, 0u64);
        for org in &self.orgs {
            for e in Entity::ALL {
                let range = SkRange::Between(run_sk(e, since_ms, ""), prefix_end(&run_prefix(e)));
                let mut after: Option<String> = None;
                loop {
                    let page = match self
                        .data
                        .store
                        .query(&org_pk(*org), &range, after.as_deref(), 500)
                        .await
                    {
                        Ok(p) => p,
                        Err(err) => {
                            return vec![CheckResult::new(
                                self.key(),
                                "component",
                                HealthStatus::Fail,
                            )
                            .output(err.to_string())]
                        }
                    };
                    for i in &page.items {
                        if let Ok(r) = i.parse::<SyncReport>() {
                            match r.outcome {
                                SyncOutcome::Failed => {
                                    failed += 1;
                                    total += 1
                                }
                                SyncOutcome::Succeeded => total += 1,
                                SyncOutcome::Interrupted => {}
                            }
                        }
                    }
                    match page.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
            }
        }
        let rate = if total == 0 {
            0.0
        } else {
            failed as f64 / total as f64
        };
        let status = error_rate_status(failed, total, &self.t).unwrap_or(HealthStatus::Pass);
        let mut r = CheckResult::new(self.key(), "component", status)
            .observed((rate * 1000.0).round() / 1000.0, "ratio");
        r.output = Some(format!("{failed} of {total} runs failed in the last hour"));
        if status != HealthStatus::Pass {
            r = r.recommend("see `classy-sync failures list` for the failing organizations");
        }
        vec![r]
    }
}
