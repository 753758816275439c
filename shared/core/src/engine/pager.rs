//! Walks an organization×entity page by page and hands typed pages, each with the
//! checkpoint that follows it, to the writer. Runs ahead of the writer by a few pages.
//!
//! Full sync: keyset on id (`filter=id>LAST&sort=id:asc`), immune to records changing while
//! it walks, exactly ⌈N/100⌉ calls. Incremental: keyset on `updated_at >= cursor` in
//! ascending order, skipping the ids already seen at the cursor second. A second holding a
//! full page of records is read separately by page number (see `read_hot_second`).

use super::state::{Checkpoint, Position, SETTLED_AFTER_SECS};
use super::EngineError;
use crate::domain::entities::Record;
use crate::domain::quarantine::{decode, DecodeFailure};
use crate::domain::{Entity, OrgId, Timestamp};
use crate::ports::{AppCredentials, ClassySource, Filter, FilterOp, ListQuery, Sort, SourcePage};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct FetchedPage<T> {
    pub records: Vec<T>,
    /// Records of this page that do not decode: kept aside, the walk goes on.
    pub quarantined: Vec<Quarantined>,
    /// Where the run stands once these records are stored.
    pub checkpoint: Checkpoint,
    /// Nothing follows: a stop requested now still completes the run.
    pub last: bool,
}

/// A record that does not decode, with the raw text to keep and what can be said of it.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub failure: DecodeFailure,
    pub raw: String,
}

/// One decoded record of a page, or the reason it is set aside.
type Decoded<T> = Result<T, Quarantined>;

#[derive(Clone)]
pub struct Pager {
    pub source: Arc<dyn ClassySource>,
    pub creds: AppCredentials,
    pub org: OrgId,
    pub entity: Entity,
    pub per_page: u32,
    /// Unix seconds now, to tell a settled second from one that may still receive records.
    pub now: i64,
    /// Classy requests made by this walk (retries and tokens included).
    pub requests: Arc<AtomicU64>,
}

/// A hot second is re-read until two passes agree, at most this often.
const HOT_SECOND_PASSES: usize = 4;

/// The pages one pass over a busy second may read: those its first total needs, plus slack
/// for records joining the second while it is read.
fn max_pages(total: u64, per_page: u32) -> u32 {
    let needed = total.div_ceil(u64::from(per_page.max(1)));
    u32::try_from(needed).unwrap_or(u32::MAX).saturating_add(2)
}

#[derive(Deserialize)]
struct Stamp {
    updated_at: String,
}

#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

/// An entity's records right now: how many, and the lowest and highest id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub total: u64,
    pub first: u64,
    pub last: u64,
}

impl Pager {
    fn decoded<T: Record>(raw: &[Box<RawValue>]) -> Vec<Decoded<T>> {
        raw.iter()
            .map(|r| {
                decode::<T>(r.get()).map_err(|failure| Quarantined {
                    failure,
                    raw: r.get().to_string(),
                })
            })
            .collect()
    }

    async fn fetch(&self, query: ListQuery) -> Result<SourcePage, EngineError> {
        let (page, requests) = self
            .source
            .list_page_counted(&self.creds, self.org, self.entity, &query)
            .await;
        // A refused or failed call counts too (the run's Classy calls, in its record).
        self.requests
            .fetch_add(u64::from(requests.unwrap_or(0)), Ordering::Relaxed);
        Ok(page?)
    }

    fn query(&self, filter: Filter, sort: Sort, page: u32) -> ListQuery {
        ListQuery {
            filter: Some(filter),
            sort: Some(sort),
            page,
            per_page: self.per_page,
        }
    }

    /// The newest `updated_at` right now (one call), the start of the cursor after a full
    /// sync, and how many records the entity holds.
    pub async fn high_water(&self) -> Result<(i64, u64), EngineError> {
        let q = ListQuery {
            filter: None,
            sort: Some(Sort::desc("updated_at")),
            page: 1,
            per_page: 1,
        };
        let page = self.fetch(q).await?;
        let newest = match page.records.first() {
            None => 0,
            Some(r) => {
                let s: Stamp =
                    serde_json::from_str(r.get()).map_err(|e| EngineError::BadRecord {
                        org: self.org,
                        entity: self.entity,
                        id: "newest".into(),
                        message: e.to_string(),
                    })?;
                Timestamp::parse(&s.updated_at)
                    .map(|t| t.second())
                    .map_err(|e| EngineError::BadRecord {
                        org: self.org,
                        entity: self.entity,
                        id: "newest".into(),
                        message: e.to_string(),
                    })?
            }
        };
        Ok((newest, page.total))
    }

    /// The id range of the entity (two one-record calls: lowest id with the total, highest
    /// id), to split a large full sync into slices. `None` when it is empty.
    pub async fn id_range(&self) -> Result<Option<IdRange>, EngineError> {
        let one = |dir: fn(&'static str) -> Sort| ListQuery {
            filter: None,
            sort: Some(dir("id")),
            page: 1,
            per_page: 1,
        };
        let low = self.fetch(one(Sort::asc)).await?;
        let Some(first) = low.records.first() else {
            return Ok(None);
        };
        let high = self.fetch(one(Sort::desc)).await?;
        let id = |raw: &RawValue| {
            serde_json::from_str::<IdOnly>(raw.get())
                .map(|r| r.id)
                .map_err(|e| EngineError::BadRecord {
                    org: self.org,
                    entity: self.entity,
                    id: "id range".into(),
                    message: e.to_string(),
                })
        };
        let first = id(first)?;
        let last = match high.records.first() {
            Some(r) => id(r)?,
            None => first,
        };
        Ok(Some(IdRange {
            total: low.total,
            first,
            last: last.max(first),
        }))
    }

    /// Walks one id slice: from `after_id` upwards until the entity is exhausted or a record
    /// above `until` (inclusive bound; `None`: no bound) shows up, whose page is cut there.
    pub async fn run_slice<T: Record>(
        self,
        run_id: String,
        after_id: u64,
        until: Option<u64>,
        then: Position,
        tx: mpsc::Sender<Result<FetchedPage<T>, EngineError>>,
    ) {
        if let Err(e) = self.walk_ids(&run_id, after_id, then, until, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    /// Produces pages from `start` until the entity is exhausted, the receiver hangs up, or
    /// an error (sent as the last message).
    pub async fn run<T: Record>(
        self,
        start: Checkpoint,
        tx: mpsc::Sender<Result<FetchedPage<T>, EngineError>>,
    ) {
        let result = match start {
            Checkpoint::Full {
                run_id,
                after_id,
                then,
                ..
            } => self.walk_ids(&run_id, after_id, then, None, &tx).await,
            Checkpoint::Incremental { run_id, at } => self.walk_updates(&run_id, at, &tx).await,
        };
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn walk_ids<T: Record>(
        &self,
        run_id: &str,
        mut after_id: u64,
        then: Position,
        until: Option<u64>,
        tx: &mpsc::Sender<Result<FetchedPage<T>, EngineError>>,
    ) -> Result<(), EngineError> {
        let within = |id: u64| until.is_none_or(|hi| id <= hi);
        loop {
            let q = self.query(
                Filter::new("id", FilterOp::Gt, after_id.to_string()),
                Sort::asc("id"),
                1,
            );
            let page = self.fetch(q).await?;
            let (mut records, mut quarantined) = split(Self::decoded::<T>(&page.records));
            let ids = records
                .iter()
                .map(|r| r.id())
                .chain(quarantined.iter().filter_map(|q| q.failure.id));
            let mut beyond = false;
            if let Some(max) = ids.max() {
                if max <= after_id {
                    return Err(EngineError::Source(crate::ports::SourceError::Decode(
                        format!(
                            "{} page after id {after_id} did not move forward",
                            self.entity
                        ),
                    )));
                }
                // A slice ends at its bound: the rest of the page belongs to the next slice.
                if !within(max) {
                    beyond = true;
                    records.retain(|r| within(r.id()));
                    quarantined.retain(|q| q.failure.id.is_none_or(within));
                }
                let kept = records
                    .iter()
                    .map(|r| r.id())
                    .chain(quarantined.iter().filter_map(|q| q.failure.id))
                    .max();
                after_id = kept.unwrap_or(after_id).max(after_id);
            }
            let more = page.has_next && !page.records.is_empty() && !beyond;
            let checkpoint = Checkpoint::Full {
                run_id: run_id.to_string(),
                after_id,
                then: then.clone(),
                slices: 0,
            };
            if tx
                .send(Ok(FetchedPage {
                    records,
                    quarantined,
                    checkpoint,
                    last: !more,
                }))
                .await
                .is_err()
                || !more
            {
                return Ok(());
            }
        }
    }

    async fn walk_updates<T: Record>(
        &self,
        run_id: &str,
        mut at: Position,
        tx: &mpsc::Sender<Result<FetchedPage<T>, EngineError>>,
    ) -> Result<(), EngineError> {
        // A second known to be stored whole is not read again: the walk goes strictly after.
        let mut strictly_after: Option<i64> = at.complete.then_some(at.ts);
        loop {
            let filter = match strictly_after {
                Some(ts) => Filter::new(
                    "updated_at",
                    FilterOp::Gt,
                    Timestamp::from_unix(ts).to_classy(),
                ),
                None => Filter::new(
                    "updated_at",
                    FilterOp::Ge,
                    Timestamp::from_unix(at.ts).to_classy(),
                ),
            };
            let page = self
                .fetch(self.query(filter, Sort::asc("updated_at"), 1))
                .await?;
            let start_ts = at.ts;
            let mut fresh = Vec::with_capacity(page.records.len());
            let mut quarantined = Vec::new();
            let mut newest = start_ts;
            for r in Self::decoded::<T>(&page.records) {
                // A record that does not decode keeps its place in the walk when its id and
                // second read; else it is set aside where it stands.
                let (ts, id) = match &r {
                    Ok(r) => (r.updated_at().second(), Some(r.id())),
                    Err(q) => (q.failure.updated_at.unwrap_or(at.ts), q.failure.id),
                };
                newest = newest.max(ts);
                if let Some(id) = id {
                    if at.covers(ts, id) {
                        continue;
                    }
                    at.advance(ts, id);
                }
                match r {
                    Ok(r) => fresh.push(r),
                    Err(q) => quarantined.push(q),
                }
            }
            let full = page.has_next;
            let stuck = full && newest == start_ts && strictly_after.is_none();
            let checkpoint = Checkpoint::Incremental {
                run_id: run_id.to_string(),
                at: at.clone(),
            };
            if tx
                .send(Ok(FetchedPage {
                    records: fresh,
                    quarantined,
                    checkpoint,
                    last: !full && !stuck,
                }))
                .await
                .is_err()
            {
                return Ok(());
            }
            if stuck {
                // A full page inside one second: read that second whole, by page number.
                self.read_hot_second(run_id, &mut at, tx).await?;
                // Go on past the busy second either way: later changes belong to this run. A
                // second that may still receive records is not marked complete, so a resumed
                // walk reads it again (skipping the ids held), and the position this run
                // commits (`Position::committed_after`) makes the next run reread the
                // unsettled window.
                at.complete = self.now - at.ts >= SETTLED_AFTER_SECS;
                strictly_after = Some(at.ts);
                continue;
            }
            strictly_after = None;
            if !full {
                return Ok(());
            }
        }
    }

    /// Reads every record of `at.ts` with `updated_at=ts&sort=id:asc` page by page. Records
    /// leaving the second (being updated) shift later pages, so passes repeat until one
    /// finds nothing new and the total held still.
    async fn read_hot_second<T: Record>(
        &self,
        run_id: &str,
        at: &mut Position,
        tx: &mpsc::Sender<Result<FetchedPage<T>, EngineError>>,
    ) -> Result<(), EngineError> {
        let ts = at.ts;
        let value = Timestamp::from_unix(ts).to_classy();
        let mut seen: HashSet<u64> = at.ids_at_ts.iter().copied().collect();
        for _ in 0..HOT_SECOND_PASSES {
            let mut page_no = 1;
            let mut first_total = None;
            let mut new_in_pass = 0usize;
            let steady = loop {
                let q = self.query(
                    Filter::new("updated_at", FilterOp::Eq, value.clone()),
                    Sort::asc("id"),
                    page_no,
                );
                let page = self.fetch(q).await?;
                let total = *first_total.get_or_insert(page.total);
                let mut fresh = Vec::new();
                let mut quarantined = Vec::new();
                for r in Self::decoded::<T>(&page.records) {
                    let (second, id) = match &r {
                        Ok(r) => (Some(r.updated_at().second()), Some(r.id())),
                        Err(q) => (q.failure.updated_at, q.failure.id),
                    };
                    // A record updated meanwhile shows its new second: later walks get it.
                    if second.is_some_and(|s| s != ts) {
                        continue;
                    }
                    match id {
                        Some(id) if !seen.insert(id) => continue,
                        Some(id) => at.advance(ts, id),
                        None => {}
                    }
                    match r {
                        Ok(r) => fresh.push(r),
                        Err(q) => quarantined.push(q),
                    }
                }
                new_in_pass += fresh.len() + quarantined.len();
                let checkpoint = Checkpoint::Incremental {
                    run_id: run_id.to_string(),
                    at: at.clone(),
                };
                if tx
                    .send(Ok(FetchedPage {
                        records: fresh,
                        quarantined,
                        checkpoint,
                        last: false,
                    }))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                if !page.has_next {
                    break page.total == total;
                }
                // A source that keeps announcing more pages than the second holds would hold
                // the run here for ever: a pass reads at most the pages its first total needs.
                if page_no >= max_pages(total, self.per_page) {
                    return Err(EngineError::Source(crate::ports::SourceError::Decode(format!(
                        "{} second {value}: more than {page_no} pages for {total} records; retry later",
                        self.entity
                    ))));
                }
                page_no += 1;
            };
            if steady && (new_in_pass == 0 || first_total == Some(seen.len() as u64)) {
                return Ok(());
            }
        }
        Err(EngineError::Source(crate::ports::SourceError::Decode(format!(
            "{} records of second {value} kept changing over {HOT_SECOND_PASSES} passes; retry later",
            self.entity
        ))))
    }
}

/// The decoded records of a page, and those set aside.
fn split<T>(decoded: Vec<Decoded<T>>) -> (Vec<T>, Vec<Quarantined>) {
    let mut good = Vec::with_capacity(decoded.len());
    let mut bad = Vec::new();
    for d in decoded {
        match d {
            Ok(r) => good.push(r),
            Err(q) => bad.push(q),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entities::Supporter;
    use crate::ports::SourceError;
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// A source whose one busy second never ends: every page of it is full and announces
    /// another, whatever the total says.
    struct EndlessSecond {
        ts: i64,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl ClassySource for EndlessSecond {
        async fn list_page(
            &self,
            _creds: &AppCredentials,
            _org: OrgId,
            _entity: Entity,
            query: &ListQuery,
        ) -> Result<SourcePage, SourceError> {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            assert!(*calls < 1_000, "the walk did not stop");
            let stamp = Timestamp::from_unix(self.ts).to_classy();
            let first = u64::from(query.page) * 100;
            let records = (first..first + 100)
                .map(|id| {
                    RawValue::from_string(format!(r#"{{"id":{id},"updated_at":"{stamp}"}}"#))
                        .unwrap()
                })
                .collect();
            Ok(SourcePage {
                records,
                current_page: query.page,
                last_page: query.page + 1,
                total: 150,
                has_next: true,
                requests: 1,
            })
        }

        fn calls_made(&self) -> u64 {
            u64::from(*self.calls.lock().unwrap())
        }
    }

    /// Ids 1..=`n`, served `id>X&sort=id:asc` a page at a time.
    struct Ids {
        n: u64,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl ClassySource for Ids {
        async fn list_page(
            &self,
            _creds: &AppCredentials,
            _org: OrgId,
            _entity: Entity,
            query: &ListQuery,
        ) -> Result<SourcePage, SourceError> {
            *self.calls.lock().unwrap() += 1;
            let f = query.filter.as_ref().expect("keyset filter");
            assert_eq!((f.field.as_str(), f.op), ("id", FilterOp::Gt));
            let after: u64 = f.value.parse().unwrap();
            let ids: Vec<u64> = (after + 1..=self.n).take(query.per_page as usize).collect();
            let stamp = Timestamp::from_unix(1_700_000_000).to_classy();
            let records = ids
                .iter()
                .map(|id| {
                    RawValue::from_string(format!(
                        r#"{{"id":{id},"updated_at":"{stamp}","created_at":"{stamp}"}}"#
                    ))
                    .unwrap()
                })
                .collect();
            Ok(SourcePage {
                records,
                current_page: 1,
                last_page: 1,
                total: self.n - after,
                has_next: ids.last().is_some_and(|l| *l < self.n),
                requests: 1,
            })
        }

        fn calls_made(&self) -> u64 {
            u64::from(*self.calls.lock().unwrap())
        }
    }

    /// A pager over `source`'s supporters of organization 1, 100 a page.
    fn supporters_pager(source: Arc<dyn ClassySource>) -> Pager {
        Pager {
            source,
            creds: AppCredentials {
                client_id: "c".into(),
                client_secret: "s".to_string().into(),
            },
            org: 1,
            entity: Entity::Supporters,
            per_page: 100,
            now: 1_700_001_000,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    #[tokio::test]
    async fn a_slice_stops_at_its_bound_and_drops_the_rest_of_the_page() {
        let source = Arc::new(Ids {
            n: 1_000,
            calls: Mutex::new(0),
        });
        let pager = supporters_pager(source.clone());
        let (tx, mut rx) = mpsc::channel::<Result<FetchedPage<Supporter>, EngineError>>(64);
        tokio::spawn(pager.run_slice("r".into(), 250, Some(520), Position::default(), tx));
        let mut ids = Vec::new();
        let mut last = None;
        while let Some(page) = rx.recv().await {
            let page = page.unwrap();
            ids.extend(page.records.iter().map(|r| r.id));
            last = Some((page.last, page.checkpoint));
        }
        assert_eq!(ids, (251..=520).collect::<Vec<_>>());
        let (is_last, checkpoint) = last.unwrap();
        assert!(is_last);
        assert!(matches!(checkpoint, Checkpoint::Full { after_id: 520, .. }));
        // 251–350, 351–450, 451–550 (cut at 520): no page past the bound.
        assert_eq!(source.calls_made(), 3);
    }

    #[tokio::test]
    async fn a_busy_second_that_never_ends_is_read_a_bounded_number_of_pages() {
        let source = Arc::new(EndlessSecond {
            ts: 1_700_000_000,
            calls: Mutex::new(0),
        });
        let pager = supporters_pager(source.clone());
        let (tx, mut rx) = mpsc::channel::<Result<FetchedPage<Supporter>, EngineError>>(64);
        let start = Checkpoint::Incremental {
            run_id: "r".into(),
            at: Position {
                ts: 1_700_000_000,
                ids_at_ts: Vec::new(),
                complete: false,
            },
        };
        tokio::spawn(pager.run(start, tx));
        let mut error = None;
        while let Some(page) = rx.recv().await {
            if let Err(e) = page {
                error = Some(e.to_string());
            }
        }
        let error = error.expect("the walk must end with an error");
        assert!(error.contains("retry later"), "{error}");
        // One keyset page, then at most ⌈150/100⌉ + 2 pages of the second.
        assert!(source.calls_made() <= 5, "{} calls", source.calls_made());
    }
}
