//! Event-triggered syncs: Classy (Svix) webhooks and `SyncRequested` events become
//! incremental sync jobs, coalesced with whatever is queued or running for the pair.
//!
//! Coalescing ([`Datastore::request_sync`]), per organization×entity:
//! - no sync holds the lease: if a follow-up is already waiting (`RERUN#<entity>`) or a job
//!   is queued (`QUEUED#<entity>`, conditional put), nothing is added: that job has not
//!   started, so it reads this change; otherwise the `QUEUED` marker is put and one job is
//!   sent, delayed by the debounce;
//! - a sync holds the lease (it may have read past this change already): the first request
//!   puts `RERUN#<entity>` (conditional put) and sends one follow-up job; later ones find the
//!   marker and add nothing. The next run of the pair clears the marker when it takes the
//!   lease ([`Datastore::rerun_started`]), so a change during that run asks again.
//!
//! A burst therefore starts at most two syncs per pair (the queued one and one follow-up)
//! as long as it ends before the follow-up starts, and no change is lost: every change is
//! followed by a run that takes the lease after it.

use super::jobs::SyncJob;
use super::{Datastore, EngineError, SyncMode};
use crate::domain::keys::{lease_sk, org_pk, queued_sk, rerun_sk, webhook_delivery_sk};
use crate::domain::organization::webhook_secret_name;
use crate::domain::usage::Operation;
use crate::domain::webhook::{self, SvixHeaders, VerifyError, MAX_BODY_BYTES};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{Condition, Item};
use crate::ports::{JobQueue, SecretError, SecretStore};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How long a triggered job waits before it runs. Classy sends several events for one
/// donation (supporter, transaction, plan) within about a second and bursts come in waves:
/// 5 s gathers them into one sync per pair and still leaves the change stored well within
/// 15 s (5 s + one incremental sync of a few pages).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(5);
/// How long a webhook delivery id is remembered (Svix retries within days, duplicates
/// within seconds to hours).
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a requested job whose pair is running waits before it tries again.
pub const RETRY_WHILE_RUNNING: Duration = Duration::from_secs(5);

/// What a request for one pair did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requested {
    /// A job was sent.
    Enqueued,
    /// A job is queued and has not started: it reads this change.
    AlreadyQueued,
    /// A sync is running: one follow-up job was sent.
    FollowUp,
    /// A follow-up job is already waiting.
    FollowUpPending,
}

impl Requested {
    pub fn sent_a_job(self) -> bool {
        matches!(self, Requested::Enqueued | Requested::FollowUp)
    }
}

impl Datastore {
    /// Asks for a sync of `job`'s pair, coalesced with what is queued or running (see the
    /// module docs). `delay` is the debounce; `marker_ttl` bounds how long a lost job blocks
    /// the next one.
    pub async fn request_sync(
        &self,
        job: SyncJob,
        queue: &dyn JobQueue,
        delay: Duration,
        marker_ttl: Duration,
    ) -> Result<Requested, EngineError> {
        let job = SyncJob {
            requested: true,
            ..job
        };
        let now = self.clock.unix();
        let pk = org_pk(job.org);
        let live = |item: Option<Item>| item.is_some_and(|i| i.expires_at.is_none_or(|t| t >= now));
        let running = live(self.store.get(&pk, &lease_sk(job.entity)).await?);
        let expiry = now + marker_ttl.as_secs() as i64;
        if running {
            let marker = Item::json(&pk, rerun_sk(job.entity), &job).with_expiry(expiry);
            match self
                .store
                .put(marker, Condition::NotExistsOrExpired { now })
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_condition_failed() => return Ok(Requested::FollowUpPending),
                Err(e) => return Err(e.into()),
            }
            let mut message = job.to_message();
            // Its own dedup id: the running job's message is still live.
            message.dedup_id = Some(format!(
                "{}:rerun:{}",
                job.dedup_id(),
                self.clock.now().timestamp_millis()
            ));
            message.delay = delay;
            if let Err(e) = queue.send_batch(vec![message]).await {
                let _ = self.rerun_started(job.org, job.entity).await;
                return Err(e.into());
            }
            return Ok(Requested::FollowUp);
        }
        if live(self.store.get(&pk, &rerun_sk(job.entity)).await?) {
            return Ok(Requested::FollowUpPending);
        }
        let marker = Item::json(&pk, queued_sk(job.entity), &job).with_expiry(expiry);
        match self
            .store
            .put(marker, Condition::NotExistsOrExpired { now })
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_condition_failed() => return Ok(Requested::AlreadyQueued),
            Err(e) => return Err(e.into()),
        }
        let mut message = job.to_message();
        message.delay = delay;
        if let Err(e) = queue.send_batch(vec![message]).await {
            self.job_finished(job.org, job.entity).await?;
            return Err(e.into());
        }
        Ok(Requested::Enqueued)
    }

    /// A run of the pair took the lease: it reads every change made so far, so a waiting
    /// follow-up request is satisfied.
    pub async fn rerun_started(&self, org: OrgId, entity: Entity) -> Result<(), EngineError> {
        self.store
            .delete(&org_pk(org), &rerun_sk(entity), Condition::Always)
            .await?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub debounce: Duration,
    pub dedupe_ttl: Duration,
    /// As the dispatcher's: longer than a worker's run plus its retries.
    pub marker_ttl: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            debounce: DEFAULT_DEBOUNCE,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            marker_ttl: Duration::from_secs(2 * 3600),
        }
    }
}

/// What the receiver answers. Nothing here carries the body, a signature or the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// Verified and new: what each affected pair did.
    Accepted {
        entities: Vec<(Entity, Requested)>,
    },
    /// Verified, but this `svix-id` was handled already.
    Duplicate,
    TooLarge,
    /// No such organization, a disabled one, or one without a webhook secret.
    UnknownOrg,
    Unauthorized {
        reason: String,
    },
    NotJson,
    /// The store, secret store or queue failed: the sender retries.
    Unavailable {
        reason: String,
    },
}

impl WebhookOutcome {
    pub fn status(&self) -> u16 {
        match self {
            WebhookOutcome::Accepted { .. } | WebhookOutcome::Duplicate => 200,
            WebhookOutcome::TooLarge => 413,
            WebhookOutcome::UnknownOrg => 404,
            WebhookOutcome::Unauthorized { .. } => 401,
            WebhookOutcome::NotJson => 400,
            WebhookOutcome::Unavailable { .. } => 503,
        }
    }

    /// A short JSON answer for the sender.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Receives Classy webhooks for any organization: verifies, dedupes and requests syncs.
#[derive(Clone)]
pub struct WebhookReceiver {
    pub data: Datastore,
    pub secrets: Arc<dyn SecretStore>,
    pub queue: Arc<dyn JobQueue>,
    pub options: WebhookOptions,
}

impl WebhookReceiver {
    pub fn new(data: Datastore, secrets: Arc<dyn SecretStore>, queue: Arc<dyn JobQueue>) -> Self {
        WebhookReceiver {
            data,
            secrets,
            queue,
            options: WebhookOptions::default(),
        }
    }

    /// Handles `POST /webhooks/classy/{org_id}`.
    pub async fn receive(
        &self,
        org_id: &str,
        headers: &SvixHeaders,
        body: &[u8],
    ) -> WebhookOutcome {
        let outcome = self.receive_inner(org_id, headers, body).await;
        match &outcome {
            WebhookOutcome::Accepted { entities } => {
                tracing::info!(org = org_id, svix_id = ?headers.id, ?entities, "webhook accepted")
            }
            WebhookOutcome::Unavailable { reason } => {
                tracing::error!(org = org_id, reason = %reason, "webhook not handled")
            }
            other => tracing::info!(
                org = org_id,
                svix_id = ?headers.id,
                status = other.status(),
                "webhook answered"
            ),
        }
        outcome
    }

    async fn receive_inner(
        &self,
        org_id: &str,
        headers: &SvixHeaders,
        body: &[u8],
    ) -> WebhookOutcome {
        let started_at_ms = self.data.clock.now().timestamp_millis();
        let t0 = std::time::Instant::now();
        if body.len() > MAX_BODY_BYTES {
            return WebhookOutcome::TooLarge;
        }
        let unavailable = |e: &dyn std::fmt::Display| WebhookOutcome::Unavailable {
            reason: e.to_string(),
        };
        let Ok(org) = org_id.parse::<OrgId>() else {
            return WebhookOutcome::UnknownOrg;
        };
        match self.data.get_org(org).await {
            Ok(o) if o.is_enabled() => {}
            Ok(_) | Err(EngineError::UnknownOrg(_)) => return WebhookOutcome::UnknownOrg,
            Err(e) => return unavailable(&e),
        }
        let secret = match self.secrets.get(&webhook_secret_name(org)).await {
            Ok(s) => s,
            Err(SecretError::NotFound(_)) => return WebhookOutcome::UnknownOrg,
            Err(e) => return unavailable(&e),
        };
        let verified = webhook::verify(
            secret.expose_secret(),
            headers,
            body,
            self.data.clock.unix(),
        );
        let svix_id = match verified {
            Ok(id) => id,
            Err(e @ VerifyError::BadSecret) => {
                tracing::error!(org, "the stored webhook secret is not a whsec_ value");
                return WebhookOutcome::Unauthorized {
                    reason: e.to_string(),
                };
            }
            Err(e) => {
                return WebhookOutcome::Unauthorized {
                    reason: e.to_string(),
                }
            }
        };
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(body) else {
            return WebhookOutcome::NotJson;
        };
        let entities = webhook::entities_for(&event);
        // Dedupe by delivery: a signed id (at most 256 bytes, as a key part).
        let key_id: String = svix_id.chars().take(256).collect();
        let now = self.data.clock.unix();
        let seen = Item::new(org_pk(org), webhook_delivery_sk(&key_id), "{}")
            .with_expiry(now + self.options.dedupe_ttl.as_secs() as i64);
        match self
            .data
            .store
            .put(seen, Condition::NotExistsOrExpired { now })
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_condition_failed() => return WebhookOutcome::Duplicate,
            Err(e) => return unavailable(&e),
        }
        let mut done = Vec::new();
        for entity in entities {
            let job = SyncJob {
                org,
                entity,
                mode: SyncMode::Incremental,
                requested: true,
                slice: None,
            };
            match self
                .data
                .request_sync(
                    job,
                    self.queue.as_ref(),
                    self.options.debounce,
                    self.options.marker_ttl,
                )
                .await
            {
                Ok(r) => done.push((entity, r)),
                Err(e) => {
                    // Forget the delivery so the sender's retry enqueues what is missing.
                    let _ = self
                        .data
                        .store
                        .delete(
                            &org_pk(org),
                            &webhook_delivery_sk(&key_id),
                            Condition::Always,
                        )
                        .await;
                    return unavailable(&e);
                }
            }
        }
        // Usage analytics: one operation record per accepted delivery (no Classy or
        // Mailchimp call is made here; the syncs it asks for have their own run records).
        let subject = done
            .iter()
            .map(|(e, _)| e.name())
            .collect::<Vec<_>>()
            .join("+");
        let subject = if subject.is_empty() {
            "none".to_string()
        } else {
            subject
        };
        let mut op = self
            .data
            .new_op(org, Operation::Webhook, subject, started_at_ms);
        op.duration_ms = t0.elapsed().as_millis() as u64;
        op.classy_calls = Some(0);
        op.mailchimp_calls = Some(0);
        self.data.record_op_logged(&op).await;
        WebhookOutcome::Accepted { entities: done }
    }
}
