//! One organization×entity sync: lease, resume or start a checkpoint, stream pages from the
//! pager into idempotent writes, checkpoint after every page, commit the cursor only when
//! the walk is complete, then recompute the aggregates the run made dirty.

use super::aggregator::AggregateReport;
use super::lease::Lease;
use super::orgs::{app_credentials, rotated_credentials};
use super::pager::{FetchedPage, Pager};
use super::quarantine::QuarantineBook;
use super::state::{Checkpoint, Cursor, Position};
use super::writer::{write_page, PageCounts, Synced};
use super::{Datastore, EngineError};
use crate::domain::{Campaign, Entity, OrgId, RecurringPlan, Supporter, Transaction};
use crate::ports::{ClassySource, ExpiryOnly, HolderLiveness, SecretStore, SourceError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Incremental when a cursor exists, else full.
    Auto,
    Full,
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOutcome {
    Succeeded,
    Failed,
    /// Stopped on request after a checkpoint; the next run resumes.
    Interrupted,
}

/// The run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub run_id: String,
    pub org: OrgId,
    pub entity: Entity,
    /// `full` or `incremental`: what actually ran.
    pub mode: String,
    pub resumed: bool,
    pub outcome: SyncOutcome,
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub pages: u64,
    pub api_calls: u64,
    pub started_at: String,
    pub started_at_ms: i64,
    pub duration_ms: u64,
    pub error: Option<String>,
    #[serde(default)]
    pub aggregates_recomputed: u64,
    /// Records that did not decode in this run: kept aside raw, the rest stored.
    #[serde(default)]
    pub quarantined: u64,
}

/// What a running sync reports after each page (for progress bars).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub org: OrgId,
    pub entity: Entity,
    pub fetched: u64,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Asks running syncs to stop at their next checkpoint.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default, Clone)]
pub struct RunControl {
    pub stop: StopSignal,
    pub progress: Option<ProgressFn>,
    /// A sliced full sync is left to several workers, one per slice (the sync-worker on AWS
    /// queues a job per slice): the run plans it (or finds it in progress) and returns
    /// `Interrupted` without walking. Off (the default), this process walks every slice
    /// at once in tasks.
    pub fan_out_slices: bool,
}

/// Runs syncs: reads Classy with an organization's credentials (from the secret store) and
/// writes the store, one leased organization×entity at a time.
#[derive(Clone)]
pub struct SyncService {
    pub data: Datastore,
    pub source: Arc<dyn ClassySource>,
    pub secrets: Arc<dyn SecretStore>,
    /// Whether a lease's holder is gone (its lease taken over at once); by default leases
    /// simply expire.
    pub liveness: Arc<dyn HolderLiveness>,
}

impl SyncService {
    pub fn new(
        data: Datastore,
        source: Arc<dyn ClassySource>,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        SyncService {
            data,
            source,
            secrets,
            liveness: Arc::new(ExpiryOnly),
        }
    }

    pub fn with_liveness(mut self, liveness: Arc<dyn HolderLiveness>) -> Self {
        self.liveness = liveness;
        self
    }
}

pub(crate) struct RunState {
    pub(crate) counts: PageCounts,
    pub(crate) pages: u64,
    pub(crate) resumed: bool,
    pub(crate) full: bool,
    pub(crate) quarantined: u64,
    /// Classy requests of the run (shared with its pager).
    pub(crate) requests: Arc<AtomicU64>,
    started: chrono::DateTime<chrono::Utc>,
    t0: Instant,
}

impl RunState {
    /// A run starting now (`started`: the engine clock's now).
    pub(crate) fn begin(started: chrono::DateTime<chrono::Utc>, full: bool) -> Self {
        RunState {
            counts: PageCounts::default(),
            pages: 0,
            resumed: false,
            full,
            quarantined: 0,
            requests: Arc::new(AtomicU64::new(0)),
            started,
            t0: Instant::now(),
        }
    }

    /// The record of the run this state counted, once its work is over.
    pub(crate) fn report(
        &self,
        run_id: String,
        org: OrgId,
        entity: Entity,
        outcome: SyncOutcome,
        error: Option<String>,
        aggregates: &AggregateReport,
    ) -> SyncReport {
        SyncReport {
            run_id,
            org,
            entity,
            mode: if self.full { "full" } else { "incremental" }.to_string(),
            resumed: self.resumed,
            outcome,
            fetched: self.counts.fetched,
            created: self.counts.created,
            updated: self.counts.updated,
            unchanged: self.counts.unchanged,
            pages: self.pages,
            api_calls: self.requests.load(Ordering::Relaxed),
            started_at: self.started.to_rfc3339(),
            started_at_ms: self.started.timestamp_millis(),
            duration_ms: self.t0.elapsed().as_millis() as u64,
            error,
            aggregates_recomputed: aggregates.supporters_recomputed
                + aggregates.campaigns_recomputed,
            quarantined: self.quarantined,
        }
    }
}

impl SyncService {
    /// Syncs every entity of an organization in dependency order; one entity failing does not
    /// stop the others.
    pub async fn sync_org(
        &self,
        org: OrgId,
        mode: SyncMode,
        ctl: &RunControl,
    ) -> Vec<Result<SyncReport, EngineError>> {
        let mut out = Vec::new();
        for entity in Entity::ALL {
            if ctl.stop.is_stopped() {
                break;
            }
            out.push(self.sync_entity(org, entity, mode, ctl).await);
        }
        out
    }

    pub async fn sync_entity(
        &self,
        org_id: OrgId,
        entity: Entity,
        mode: SyncMode,
        ctl: &RunControl,
    ) -> Result<SyncReport, EngineError> {
        let org = self.data.get_org(org_id).await?;
        if !org.is_enabled() {
            return Err(EngineError::OrgDisabled(org_id));
        }
        let creds = app_credentials(self.secrets.as_ref(), &org).await?;
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let mut lease = self.acquire_lease(org_id, entity, &run_id).await?;
        // This run reads every change made before now: a follow-up asked for while the last
        // run held the lease is covered by it.
        if let Err(e) = self.data.rerun_started(org_id, entity).await {
            tracing::warn!(error = %e, "could not clear the follow-up marker; it expires on its own");
        }
        let mut state = RunState::begin(self.data.clock.now(), false);
        let requests = state.requests.clone();
        let mut result = self
            .run_locked(
                org_id, entity, mode, &creds, &run_id, &mut lease, &mut state, ctl, &requests,
            )
            .await;
        if matches!(
            result,
            Err(EngineError::Source(SourceError::Unauthorized { .. }))
        ) {
            // A warm process may hold a cached secret that a rotation has since replaced.
            if let Some(fresh) = rotated_credentials(self.secrets.as_ref(), &org, &creds).await {
                tracing::info!(
                    org = org_id,
                    "credential refused; retrying with the rotated one"
                );
                result = self
                    .run_locked(
                        org_id, entity, mode, &fresh, &run_id, &mut lease, &mut state, ctl,
                        &requests,
                    )
                    .await;
            }
        }
        let (outcome, error, aggregates) = match &result {
            Ok((true, agg)) => (SyncOutcome::Succeeded, None, *agg),
            Ok((false, _)) => (SyncOutcome::Interrupted, None, AggregateReport::default()),
            Err(e) => (
                SyncOutcome::Failed,
                Some(e.to_string()),
                AggregateReport::default(),
            ),
        };
        let report = state.report(run_id, org_id, entity, outcome, error, &aggregates);
        // Bookkeeping failures must not hide the run's own error.
        let bookkeeping = async {
            self.data.save_run(&report).await?;
            match outcome {
                SyncOutcome::Succeeded => self
                    .data
                    .record_outcome(org_id, entity, None)
                    .await
                    .map(|_| ()),
                SyncOutcome::Failed => match &result {
                    Err(e) if e.counts_as_failure() => self
                        .data
                        .record_outcome(org_id, entity, report.error.as_deref())
                        .await
                        .map(|_| ()),
                    _ => Ok(()),
                },
                SyncOutcome::Interrupted => Ok(()),
            }
        }
        .await;
        let released = self.release_lease(lease).await;
        // A run that started returns its record, failed or not; the error is in it.
        bookkeeping?;
        released?;
        if let Err(e) = &result {
            tracing::warn!(org = org_id, entity = %entity, error = %e, "sync failed");
        }
        Ok(report)
    }

    /// Returns whether the walk completed (false: stopped at a checkpoint on request).
    #[allow(clippy::too_many_arguments)]
    async fn run_locked(
        &self,
        org: OrgId,
        entity: Entity,
        mode: SyncMode,
        creds: &crate::ports::AppCredentials,
        run_id: &str,
        lease: &mut Lease,
        state: &mut RunState,
        ctl: &RunControl,
        requests: &Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<(bool, AggregateReport), EngineError> {
        let (mut cursor, mut version) = self.data.load_cursor(org, entity).await?;
        let pager = self.pager(org, entity, creds, requests);
        let want_full = mode == SyncMode::Full || cursor.committed.is_none();
        let start = match cursor.in_progress.clone() {
            // Resume what a killed or failed run left, unless a full sync replaces it.
            Some(cp) if !(want_full && matches!(cp, Checkpoint::Incremental { .. })) => {
                state.resumed = true;
                cp
            }
            _ if want_full => {
                let (high_water, total) = pager.high_water().await?;
                if has_aggregates(entity) {
                    self.data.mark_all_dirty(org, entity).await?;
                }
                self.data.mark_quality_all(org, entity).await?;
                // A large entity is split into id slices walked at once.
                let slices = self.plan_full(&pager, org, entity, run_id, total).await?;
                Checkpoint::Full {
                    run_id: run_id.to_string(),
                    after_id: 0,
                    then: Position::committed_after(high_water, self.data.clock.unix()),
                    slices: slices.len() as u32,
                }
            }
            _ => Checkpoint::Incremental {
                run_id: run_id.to_string(),
                at: cursor.committed.clone().unwrap_or_default(),
            },
        };
        state.full = matches!(start, Checkpoint::Full { .. });
        cursor.in_progress = Some(start.clone());
        version = self.data.save_cursor(org, entity, &cursor, version).await?;

        let sliced = matches!(start, Checkpoint::Full { slices, .. } if slices > 0);
        if sliced && ctl.fan_out_slices {
            // Each slice is worked by a job of its own (`sync_slice`).
            return Ok((false, AggregateReport::default()));
        }
        let completed = if sliced {
            let (done, held) = match entity {
                Entity::Supporters => {
                    self.pump_slices::<Supporter>(pager, &start, lease, state, ctl, None)
                        .await?
                }
                Entity::Campaigns => {
                    self.pump_slices::<Campaign>(pager, &start, lease, state, ctl, None)
                        .await?
                }
                Entity::Transactions => {
                    self.pump_slices::<Transaction>(pager, &start, lease, state, ctl, None)
                        .await?
                }
                Entity::RecurringPlans => {
                    self.pump_slices::<RecurringPlan>(pager, &start, lease, state, ctl, None)
                        .await?
                }
            };
            cursor.quarantined = held;
            if !done {
                self.data.save_cursor(org, entity, &cursor, version).await?;
            }
            done
        } else {
            self.pump_one(
                entity,
                pager,
                start,
                lease,
                &mut cursor,
                &mut version,
                state,
                ctl,
            )
            .await?
        };
        if !completed {
            return Ok((false, AggregateReport::default()));
        }
        let aggregates = self.data.refresh_after_walk(org, entity).await?;
        finish_cursor(&mut cursor, self.data.clock.unix());
        self.data.save_cursor(org, entity, &cursor, version).await?;
        if sliced {
            self.data.clear_slices(org, entity).await?;
        }
        Ok((true, aggregates))
    }

    pub(crate) fn pager(
        &self,
        org: OrgId,
        entity: Entity,
        creds: &crate::ports::AppCredentials,
        requests: &Arc<std::sync::atomic::AtomicU64>,
    ) -> Pager {
        Pager {
            source: self.source.clone(),
            creds: creds.clone(),
            org,
            entity,
            per_page: self.data.options.per_page,
            now: self.data.clock.unix(),
            requests: requests.clone(),
        }
    }

    /// One walker (an incremental walk, or a full sync not split into slices).
    #[allow(clippy::too_many_arguments)]
    async fn pump_one(
        &self,
        entity: Entity,
        pager: Pager,
        start: Checkpoint,
        lease: &mut Lease,
        cursor: &mut Cursor,
        version: &mut u64,
        state: &mut RunState,
        ctl: &RunControl,
    ) -> Result<bool, EngineError> {
        Ok(match entity {
            Entity::Supporters => {
                self.pump::<Supporter>(pager, start, lease, cursor, version, state, ctl)
                    .await?
            }
            Entity::Campaigns => {
                self.pump::<Campaign>(pager, start, lease, cursor, version, state, ctl)
                    .await?
            }
            Entity::Transactions => {
                self.pump::<Transaction>(pager, start, lease, cursor, version, state, ctl)
                    .await?
            }
            Entity::RecurringPlans => {
                self.pump::<RecurringPlan>(pager, start, lease, cursor, version, state, ctl)
                    .await?
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn pump<T: Synced>(
        &self,
        pager: Pager,
        start: Checkpoint,
        lease: &mut Lease,
        cursor: &mut Cursor,
        version: &mut u64,
        state: &mut RunState,
        ctl: &RunControl,
    ) -> Result<bool, EngineError> {
        let rebuild_later = matches!(start, Checkpoint::Full { .. }) && has_aggregates(T::ENTITY);
        let (tx, mut rx) = mpsc::channel::<Result<FetchedPage<T>, EngineError>>(
            self.data.options.prefetch_pages.max(1),
        );
        let producer = tokio::spawn(pager.run::<T>(start, tx));
        let renew_every = (self.data.options.lease_ttl.as_secs() / 4).max(1) as i64;
        let mut renewed_at = self.data.clock.unix();
        let mut completed = true;
        let org = lease.org;
        let mut quarantine = QuarantineBook::load(self.data.store.as_ref(), org, T::ENTITY).await?;
        while let Some(msg) = rx.recv().await {
            let page = match msg {
                Ok(p) => p,
                Err(e) => {
                    producer.abort();
                    return Err(e);
                }
            };
            let counts = write_page(
                self.data.store.as_ref(),
                org,
                &page.records,
                rebuild_later,
                self.data.clock.now().timestamp_millis(),
            )
            .await?;
            state.counts.add(counts);
            state.pages += 1;
            let store = self.data.store.as_ref();
            quarantine.release(store, &page.records).await?;
            let at_ms = self.data.clock.now().timestamp_millis();
            quarantine
                .keep(store, &page.quarantined, &lease.owner, at_ms)
                .await?;
            state.quarantined = quarantine.quarantined;
            cursor.quarantined = quarantine.held();
            let last = page.last;
            cursor.in_progress = Some(page.checkpoint);
            *version = self
                .data
                .save_cursor(org, T::ENTITY, cursor, *version)
                .await?;
            if self.data.clock.unix() - renewed_at >= renew_every {
                self.renew_lease(lease).await?;
                renewed_at = self.data.clock.unix();
            }
            if let Some(p) = &ctl.progress {
                p(super::sync::Progress {
                    org,
                    entity: T::ENTITY,
                    fetched: state.counts.fetched,
                });
            }
            if ctl.stop.is_stopped() && !last {
                completed = false;
                break;
            }
        }
        producer.abort();
        Ok(completed)
    }
}

/// The cursor of a completed walk: its checkpoint becomes the committed position.
pub(crate) fn finish_cursor(cursor: &mut Cursor, now: i64) {
    let finished = cursor.in_progress.take();
    cursor.committed = Some(match finished {
        Some(Checkpoint::Full { then, .. }) => {
            cursor.last_full_at = Some(now);
            then
        }
        Some(Checkpoint::Incremental { at, .. }) => Position::committed_after(at.ts, now),
        None => cursor.committed.clone().unwrap_or_default(),
    });
    cursor.last_success_at = Some(now);
}

/// Entities whose records feed computed aggregates.
pub(crate) fn has_aggregates(entity: Entity) -> bool {
    matches!(entity, Entity::Transactions | Entity::RecurringPlans)
}
