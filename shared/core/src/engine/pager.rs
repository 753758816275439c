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
    /// Where the run stands once these records are stored.
    pub checkpoint: Checkpoint,
    /// Nothing follows: a stop requested now still completes the run.
    pub last: bool,
}

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

#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: serde_json::Value,
}

#[derive(Deserialize)]
struct Stamp {
    updated_at: String,
}

impl Pager {
    fn typed<T: Record>(&self, raw: &[Box<RawValue>]) -> Result<Vec<T>, EngineError> {
        raw.iter()
            .map(|r| {
                serde_json::from_str::<T>(r.get()).map_err(|e| {
                    let id = serde_json::from_str::<IdOnly>(r.get())
                        .map(|i| i.id.to_string())
                        .unwrap_or_else(|_| "?".into());
                    EngineError::BadRecord {
                        org: self.org,
                        entity: self.entity,
                        id,
                        message: e.to_string(),
                    }
                })
            })
            .collect()
    }

    async fn fetch(&self, query: ListQuery) -> Result<SourcePage, EngineError> {
        let page = self
            .source
            .list_page(&self.creds, self.org, self.entity, &query)
            .await?;
        self.requests
            .fetch_add(u64::from(page.requests), Ordering::Relaxed);
        Ok(page)
    }

    fn query(&self, filter: Filter, sort: Sort, page: u32) -> ListQuery {
        ListQuery {
            filter: Some(filter),
            sort: Some(sort),
            page,
            per_page: self.per_page,
        }
    }

    /// The newest `updated_at` right now (one call), the start of the cursor after a full sync.
    pub async fn high_water(&self) -> Result<i64, EngineError> {
        let q = ListQuery {
            filter: None,
            sort: Some(Sort::desc("updated_at")),
            page: 1,
            per_page: 1,
        };
        let page = self.fetch(q).await?;
        match page.records.first() {
            None => Ok(0),
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
                    })
            }
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
            } => self.walk_ids(&run_id, after_id, then, &tx).await,
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
        tx: &mpsc::Sender<Result<FetchedPage<T>, EngineError>>,
    ) -> Result<(), EngineError> {
        loop {
            let q = self.query(
                Filter::new("id", FilterOp::Gt, after_id.to_string()),
                Sort::asc("id"),
                1,
            );
            let page = self.fetch(q).await?;
            let records: Vec<T> = self.typed(&page.records)?;
            if let Some(max) = records.iter().map(|r| r.id()).max() {
                if max <= after_id {
                    return Err(EngineError::Source(crate::ports::SourceError::Decode(
                        format!(
                            "{} page after id {after_id} did not move forward",
                            self.entity
                        ),
                    )));
                }
                after_id = max;
            }
            let more = page.has_next && !records.is_empty();
            let checkpoint = Checkpoint::Full {
                run_id: run_id.to_string(),
                after_id,
                then: then.clone(),
            };
            if tx
                .send(Ok(FetchedPage {
                    records,
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
            let all: Vec<T> = self.typed(&page.records)?;
            let start_ts = at.ts;
            let mut fresh = Vec::with_capacity(all.len());
            let mut newest = start_ts;
            for r in all {
                let ts = r.updated_at().second();
                newest = newest.max(ts);
                if at.covers(ts, r.id()) {
                    continue;
                }
                at.advance(ts, r.id());
                fresh.push(r);
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
                if self.now - at.ts < SETTLED_AFTER_SECS {
                    // The second may still receive records: stop here; the next run rereads it.
                    return Ok(());
                }
                at.complete = true;
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
                let records: Vec<T> = self.typed(&page.records)?;
                let mut fresh = Vec::new();
                for r in records {
                    // A record updated meanwhile shows its new second: later walks get it.
                    if r.updated_at().second() == ts && seen.insert(r.id()) {
                        at.advance(ts, r.id());
                        fresh.push(r);
                    }
                }
                new_in_pass += fresh.len();
                let checkpoint = Checkpoint::Incremental {
                    run_id: run_id.to_string(),
                    at: at.clone(),
                };
                if tx
                    .send(Ok(FetchedPage {
                        records: fresh,
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
