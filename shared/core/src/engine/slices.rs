//! A large full sync split into id slices walked at once, so that one large organization can
//! spend the whole Classy budget (one walker makes one request at a time, a few a second at
//! Classy's latency). Classy takes one `filter` per request, so a slice (lo, hi] walks
//! `id>after` upwards and stops at the first record above `hi`, dropping the rest of that page.
//!
//! Each slice's position is its own item (`SLICE#<entity>#<index>`), saved after every page
//! it stores, so a killed run resumes every slice where it was. The cursor's checkpoint says
//! how many slices there are; the full sync commits only once every slice is done, and the
//! slice items are deleted after the commit. The incremental walk stays one ordered walker.

use super::aggregator::AggregateReport;
use super::jobs::{SliceJob, SyncJob};
use super::lease::Lease;
use super::orgs::{app_credentials, rotated_credentials};
use super::pager::{FetchedPage, IdRange, Pager};
use super::quarantine::QuarantineBook;
use super::state::Checkpoint;
use super::sync::{
    finish_cursor, has_aggregates, Progress, RunControl, RunState, SyncOutcome, SyncReport,
};
use super::writer::{write_page, Synced};
use super::{Datastore, EngineError, SyncService};
use crate::domain::keys::{org_pk, slice_lease_sk, slice_prefix, slice_sk};
use crate::domain::{Campaign, Entity, OrgId, RecurringPlan, Supporter, Transaction};
use crate::ports::store::{for_each_page, Condition, Item, SkRange, WriteOp};
use crate::ports::{SourceError, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One id slice of a full sync and where its walk stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceState {
    pub run_id: String,
    pub index: u32,
    /// Exclusive lower bound.
    pub lo: u64,
    /// Inclusive upper bound; `None` for the last slice, which also takes records created
    /// above the highest id while the sync runs.
    pub hi: Option<u64>,
    /// Every record of the slice up to this id is stored.
    pub after_id: u64,
    pub done: bool,
    /// Pages stored by this slice so far (over every run that worked it).
    #[serde(default)]
    pub pages: u64,
}

/// The slices (lo, hi] of a full sync over `range` with `per_page` records a page: none (one
/// walker) unless the walk needs at least two slices of `pages_per_slice` pages, then as many
/// as `max_slices` and the pages allow, splitting the ids evenly.
pub fn plan_slices(
    range: IdRange,
    per_page: u32,
    max_slices: u32,
    pages_per_slice: u64,
) -> Vec<(u64, Option<u64>)> {
    let pages = range.total.div_ceil(u64::from(per_page.max(1)));
    let by_pages = pages / pages_per_slice.max(1);
    let n = by_pages
        .min(u64::from(max_slices))
        .min(range.last.saturating_sub(range.first).saturating_add(1));
    if n < 2 {
        return Vec::new();
    }
    let lo = range.first.saturating_sub(1);
    let span = u128::from(range.last - lo);
    let at = |i: u64| lo + (span * u128::from(i) / u128::from(n)) as u64;
    (0..n)
        .map(|i| (at(i), (i + 1 < n).then(|| at(i + 1))))
        .collect()
}

impl Datastore {
    /// The slice items of the pair's full sync `run_id`, by index.
    pub async fn load_slices(
        &self,
        org: OrgId,
        entity: Entity,
        run_id: &str,
    ) -> Result<Vec<SliceState>, EngineError> {
        let mut out = Vec::new();
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &SkRange::prefix(slice_prefix(entity)),
            self.options.scan_page,
            |items| {
                for item in items {
                    let s: SliceState = item.parse()?;
                    if s.run_id == run_id {
                        out.push(s);
                    }
                }
                Ok(())
            },
        )
        .await?;
        out.sort_by_key(|s| s.index);
        Ok(out)
    }

    pub async fn save_slice(
        &self,
        org: OrgId,
        entity: Entity,
        slice: &SliceState,
    ) -> Result<(), EngineError> {
        let item = Item::json(org_pk(org), slice_sk(entity, slice.index), slice);
        self.store.put(item, Condition::Always).await?;
        Ok(())
    }

    /// Deletes every slice item of the pair (after a commit, or stale ones before a plan).
    pub async fn clear_slices(&self, org: OrgId, entity: Entity) -> Result<(), EngineError> {
        let pk = org_pk(org);
        let mut sks = Vec::new();
        for_each_page(
            self.store.as_ref(),
            &pk,
            &SkRange::prefix(slice_prefix(entity)),
            self.options.scan_page,
            |items| {
                sks.extend(items.into_iter().map(|i| i.sk));
                Ok(())
            },
        )
        .await?;
        if !sks.is_empty() {
            let ops = sks
                .into_iter()
                .map(|sk| WriteOp::Delete { pk: pk.clone(), sk })
                .collect();
            self.store.batch_write(ops).await?;
        }
        Ok(())
    }
}

impl SyncService {
    /// Plans a new full sync of `total` records: the slices, saved, when the entity is large
    /// enough and slicing is on; an empty list means one walker. A small entity costs no
    /// call; a large one two (its lowest and highest id).
    pub(crate) async fn plan_full(
        &self,
        pager: &Pager,
        org: OrgId,
        entity: Entity,
        run_id: &str,
        total: u64,
    ) -> Result<Vec<SliceState>, EngineError> {
        let opts = &self.data.options;
        let whole = IdRange {
            total,
            first: 1,
            last: u64::MAX,
        };
        if plan_slices(
            whole,
            opts.per_page,
            opts.full_sync_slices,
            opts.pages_per_slice,
        )
        .is_empty()
        {
            return Ok(Vec::new());
        }
        let Some(range) = pager.id_range().await? else {
            return Ok(Vec::new());
        };
        let plan = plan_slices(
            range,
            opts.per_page,
            opts.full_sync_slices,
            opts.pages_per_slice,
        );
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        self.data.clear_slices(org, entity).await?;
        let mut out = Vec::with_capacity(plan.len());
        for (i, (lo, hi)) in plan.into_iter().enumerate() {
            let slice = SliceState {
                run_id: run_id.to_string(),
                index: i as u32,
                lo,
                hi,
                after_id: lo,
                done: false,
                pages: 0,
            };
            self.data.save_slice(org, entity, &slice).await?;
            out.push(slice);
        }
        Ok(out)
    }

    /// Walks the unfinished slices of a full sync at once (or only slice `only`) and stores
    /// their pages as they come, saving each slice's position after each of its pages.
    /// Returns whether every slice walked is done (false: stopped on request).
    pub(crate) async fn pump_slices<T: Synced>(
        &self,
        pager: Pager,
        start: &Checkpoint,
        lease: &mut Lease,
        state: &mut RunState,
        ctl: &RunControl,
        only: Option<u32>,
    ) -> Result<(bool, u64), EngineError> {
        let Checkpoint::Full { run_id, then, .. } = start else {
            return Err(EngineError::Invalid("slices walk only a full sync".into()));
        };
        let org = lease.org;
        let mut slices = self.data.load_slices(org, T::ENTITY, run_id).await?;
        let expected = match start {
            Checkpoint::Full { slices, .. } => *slices as usize,
            _ => 0,
        };
        if slices.len() != expected {
            return Err(StoreError::Corrupt(format!(
                "full sync {run_id} of {} has {} of its {expected} slices stored",
                T::ENTITY,
                slices.len()
            ))
            .into());
        }
        let rebuild_later = has_aggregates(T::ENTITY);
        let prefetch = self.data.options.prefetch_pages.max(1);
        let (tx, mut rx) = mpsc::channel::<(usize, Result<FetchedPage<T>, EngineError>)>(
            prefetch * slices.len().max(1),
        );
        let mut tasks = Vec::new();
        let mut remaining = 0usize;
        for (i, s) in slices
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.done && only.is_none_or(|o| o == s.index))
        {
            remaining += 1;
            let (ptx, mut prx) = mpsc::channel(prefetch);
            tasks.push(tokio::spawn(pager.clone().run_slice::<T>(
                run_id.clone(),
                s.after_id,
                s.hi,
                then.clone(),
                ptx,
            )));
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(m) = prx.recv().await {
                    if tx.send((i, m)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        let stop_all = |tasks: &[tokio::task::JoinHandle<()>]| tasks.iter().for_each(|t| t.abort());
        let renew_every = (self.data.options.lease_ttl.as_secs() / 4).max(1) as i64;
        let mut renewed_at = self.data.clock.unix();
        let mut quarantine = QuarantineBook::load(self.data.store.as_ref(), org, T::ENTITY).await?;
        let store = self.data.store.as_ref();
        while remaining > 0 {
            let Some((i, msg)) = rx.recv().await else {
                stop_all(&tasks);
                return Err(EngineError::Source(SourceError::Decode(format!(
                    "a slice walker of {} ended before its slice",
                    T::ENTITY
                ))));
            };
            let page = match msg {
                Ok(p) => p,
                Err(e) => {
                    stop_all(&tasks);
                    return Err(e);
                }
            };
            let counts = write_page(
                store,
                org,
                &page.records,
                rebuild_later,
                self.data.clock.now().timestamp_millis(),
            )
            .await?;
            state.counts.add(counts);
            state.pages += 1;
            quarantine.release(store, &page.records).await?;
            let at_ms = self.data.clock.now().timestamp_millis();
            quarantine
                .keep(store, &page.quarantined, &lease.owner, at_ms)
                .await?;
            state.quarantined = quarantine.quarantined;
            let slice = &mut slices[i];
            if let Checkpoint::Full { after_id, .. } = page.checkpoint {
                slice.after_id = after_id;
            }
            slice.pages += 1;
            slice.done = page.last;
            self.data.save_slice(org, T::ENTITY, slice).await?;
            if page.last {
                remaining -= 1;
            }
            if self.data.clock.unix() - renewed_at >= renew_every {
                if let Err(e) = self.renew_lease(lease).await {
                    stop_all(&tasks);
                    return Err(e);
                }
                renewed_at = self.data.clock.unix();
            }
            if let Some(p) = &ctl.progress {
                p(Progress {
                    org,
                    entity: T::ENTITY,
                    fetched: state.counts.fetched,
                });
            }
            if ctl.stop.is_stopped() && remaining > 0 {
                stop_all(&tasks);
                return Ok((false, quarantine.held()));
            }
        }
        stop_all(&tasks);
        Ok((true, quarantine.held()))
    }
}

/// What one slice job did.
#[derive(Debug, Clone)]
pub struct SliceRun {
    /// The job's run record (saved): its own pages and counts; `Succeeded` once its slice
    /// is done, `Interrupted` when it stopped at a checkpoint on request, `Failed`.
    pub report: SyncReport,
    /// This job found every slice done and committed the full sync (the committed position,
    /// aggregates refreshed, slice items deleted): one job per full sync at most.
    pub committed: bool,
}

/// The unfinished sliced full sync `run` in a cursor's checkpoint, if it is still the one
/// in progress.
fn sliced_run(in_progress: Option<Checkpoint>, run: &str) -> Option<Checkpoint> {
    in_progress.filter(
        |cp| matches!(cp, Checkpoint::Full { run_id, slices, .. } if run_id == run && *slices > 0),
    )
}

impl Datastore {
    /// The slice jobs of the pair's sliced full sync in progress, if there is one: a job
    /// per unfinished slice that no worker holds (a live slice lease is being worked), or
    /// the first slice's alone when every slice is done (that job finds nothing to walk
    /// and commits).
    pub async fn slice_jobs(&self, job: &SyncJob) -> Result<Option<Vec<SyncJob>>, EngineError> {
        let (cursor, _) = self.load_cursor(job.org, job.entity).await?;
        let Some(Checkpoint::Full { run_id, slices, .. }) = cursor.in_progress else {
            return Ok(None);
        };
        if slices == 0 {
            return Ok(None);
        }
        let stored = self.load_slices(job.org, job.entity, &run_id).await?;
        let mut open = Vec::new();
        let now = self.clock.unix();
        let pk = org_pk(job.org);
        for s in stored.iter().filter(|s| !s.done) {
            let lease = self
                .store
                .get(&pk, &slice_lease_sk(job.entity, s.index))
                .await?;
            if lease.is_none_or(|l| l.expires_at.is_none_or(|t| t < now)) {
                open.push(s.index);
            }
        }
        if stored.iter().all(|s| s.done) {
            open.push(0);
        }
        Ok(Some(
            open.into_iter()
                .map(|index| SyncJob {
                    mode: super::SyncMode::Auto,
                    requested: false,
                    slice: Some(SliceJob {
                        run: run_id.clone(),
                        index,
                    }),
                    ..job.clone()
                })
                .collect(),
        ))
    }
}

impl SyncService {
    /// Works slice `index` of the pair's sliced full sync `run` under the slice's own lease
    /// (one worker per slice; several slices at once in several workers), resuming from its
    /// `SLICE#` item. The job that then finds every slice done commits the full sync, once:
    /// the cursor is written on its version, so a second finisher finds it committed and
    /// does nothing. `None`: that full sync is no longer in progress (committed, or
    /// replaced by another), nothing to do.
    pub async fn sync_slice(
        &self,
        org_id: OrgId,
        entity: Entity,
        run: &str,
        index: u32,
        ctl: &RunControl,
    ) -> Result<Option<SliceRun>, EngineError> {
        let org = self.data.get_org(org_id).await?;
        if !org.is_enabled() {
            return Err(EngineError::OrgDisabled(org_id));
        }
        let (cursor, _) = self.data.load_cursor(org_id, entity).await?;
        if sliced_run(cursor.in_progress, run).is_none() {
            return Ok(None);
        }
        let creds = app_credentials(self.secrets.as_ref(), &org).await?;
        let job_id = uuid::Uuid::new_v4().simple().to_string();
        let mut lease = self
            .acquire_slice_lease(org_id, entity, index, &job_id)
            .await?;
        let mut state = RunState::begin(self.data.clock.now(), true);
        let requests = state.requests.clone();
        let mut result = self
            .work_slice(
                org_id, entity, run, index, &creds, &mut lease, &mut state, ctl, &requests,
            )
            .await;
        if matches!(
            result,
            Err(EngineError::Source(SourceError::Unauthorized { .. }))
        ) {
            if let Some(fresh) = rotated_credentials(self.secrets.as_ref(), &org, &creds).await {
                result = self
                    .work_slice(
                        org_id, entity, run, index, &fresh, &mut lease, &mut state, ctl, &requests,
                    )
                    .await;
            }
        }
        let (outcome, error, committed, aggregates) = match &result {
            Ok(None) => {
                self.release_lease(lease).await?;
                return Ok(None);
            }
            Ok(Some((false, _))) => (SyncOutcome::Interrupted, None, false, None),
            Ok(Some((true, agg))) => (SyncOutcome::Succeeded, None, agg.is_some(), *agg),
            Err(e) => (SyncOutcome::Failed, Some(e.to_string()), false, None),
        };
        let aggregates = aggregates.unwrap_or_default();
        let report = state.report(job_id, org_id, entity, outcome, error, &aggregates);
        let bookkeeping = async {
            self.data.save_run(&report).await?;
            match &result {
                // The pair succeeded when its full sync committed, not when one slice did.
                Ok(_) if committed => self
                    .data
                    .record_outcome(org_id, entity, None)
                    .await
                    .map(|_| ()),
                Err(e) if e.counts_as_failure() => self
                    .data
                    .record_outcome(org_id, entity, report.error.as_deref())
                    .await
                    .map(|_| ()),
                _ => Ok(()),
            }
        }
        .await;
        let released = self.release_lease(lease).await;
        bookkeeping?;
        released?;
        if let Err(e) = &result {
            tracing::warn!(org = org_id, entity = %entity, slice = index, error = %e, "slice sync failed");
        }
        Ok(Some(SliceRun { report, committed }))
    }

    /// `None`: the run is over. `Some((done, committed))`: whether the slice is done, and
    /// the aggregates' report when this job committed the full sync.
    #[allow(clippy::too_many_arguments)]
    async fn work_slice(
        &self,
        org: OrgId,
        entity: Entity,
        run: &str,
        index: u32,
        creds: &crate::ports::AppCredentials,
        lease: &mut Lease,
        state: &mut RunState,
        ctl: &RunControl,
        requests: &Arc<AtomicU64>,
    ) -> Result<Option<(bool, Option<AggregateReport>)>, EngineError> {
        // Read again under the lease: the run may have committed meanwhile.
        let (cursor, _) = self.data.load_cursor(org, entity).await?;
        let Some(start) = sliced_run(cursor.in_progress, run) else {
            return Ok(None);
        };
        if let Some(s) = self
            .data
            .load_slices(org, entity, run)
            .await?
            .iter()
            .find(|s| s.index == index)
        {
            state.resumed = s.pages > 0;
        }
        let pager = self.pager(org, entity, creds, requests);
        let only = Some(index);
        let pumped = match entity {
            Entity::Supporters => {
                self.pump_slices::<Supporter>(pager, &start, lease, state, ctl, only)
                    .await
            }
            Entity::Campaigns => {
                self.pump_slices::<Campaign>(pager, &start, lease, state, ctl, only)
                    .await
            }
            Entity::Transactions => {
                self.pump_slices::<Transaction>(pager, &start, lease, state, ctl, only)
                    .await
            }
            Entity::RecurringPlans => {
                self.pump_slices::<RecurringPlan>(pager, &start, lease, state, ctl, only)
                    .await
            }
        };
        let (done, _) = match pumped {
            Ok(p) => p,
            Err(e) => {
                // Another job committed (and is deleting the slice items) meanwhile.
                let (cursor, _) = self.data.load_cursor(org, entity).await?;
                if sliced_run(cursor.in_progress, run).is_none() {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        if !done {
            return Ok(Some((false, None)));
        }
        Ok(Some((true, self.commit_slices(org, entity, run).await?)))
    }

    /// Commits the sliced full sync `run` if every slice is done and nobody committed it
    /// yet: the aggregates are refreshed, the cursor is written on the version read (a
    /// concurrent writer makes it read again), then the slice items are deleted. Returns
    /// the aggregates' report when this call committed.
    pub(crate) async fn commit_slices(
        &self,
        org: OrgId,
        entity: Entity,
        run: &str,
    ) -> Result<Option<AggregateReport>, EngineError> {
        for _ in 0..8 {
            let (mut cursor, version) = self.data.load_cursor(org, entity).await?;
            let Some(Checkpoint::Full { slices: n, .. }) =
                sliced_run(cursor.in_progress.clone(), run)
            else {
                return Ok(None);
            };
            let slices = self.data.load_slices(org, entity, run).await?;
            if slices.len() != n as usize || slices.iter().any(|s| !s.done) {
                return Ok(None);
            }
            let aggregates = self.data.refresh_after_walk(org, entity).await?;
            finish_cursor(&mut cursor, self.data.clock.unix());
            cursor.quarantined = QuarantineBook::load(self.data.store.as_ref(), org, entity)
                .await?
                .held();
            match self.data.save_cursor(org, entity, &cursor, version).await {
                Ok(_) => {
                    self.data.clear_slices(org, entity).await?;
                    return Ok(Some(aggregates));
                }
                // The cursor changed since it was read: read it again.
                Err(EngineError::LeaseLost { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Corrupt(format!(
            "the cursor of {entity} kept changing while its full sync {run} committed"
        ))
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(total: u64, first: u64, last: u64) -> IdRange {
        IdRange { total, first, last }
    }

    #[test]
    fn small_walks_stay_one_walker() {
        // 99 pages: fewer than two slices of 50.
        assert!(plan_slices(range(9_900, 1, 9_900), 100, 4, 50).is_empty());
        assert!(plan_slices(range(1_000_000, 1, 1_000_000), 100, 1, 50).is_empty());
    }

    #[test]
    fn slices_cover_the_ids_once_and_the_last_is_open() {
        let plan = plan_slices(range(1_000_000, 1_000_001, 2_000_000), 100, 4, 50);
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0].0, 1_000_000);
        for w in plan.windows(2) {
            assert_eq!(w[0].1, Some(w[1].0), "adjacent: {plan:?}");
        }
        assert_eq!(plan[3].1, None);
        // As many as the pages allow: 120 pages of 50 make 2.
        assert_eq!(plan_slices(range(12_000, 5, 12_004), 100, 4, 50).len(), 2);
        // Any id range (the decision before the range is known).
        let whole = plan_slices(range(1_000_000, 1, u64::MAX), 100, 4, 50);
        assert_eq!((whole[0].0, whole[3].1), (0, None));
        // Never more slices than ids.
        assert_eq!(plan_slices(range(1_000_000, 7, 8), 100, 4, 50).len(), 2);
    }
}
