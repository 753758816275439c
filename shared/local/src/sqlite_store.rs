//! [`Store`] on an embedded SQLite file, with DynamoDB's semantics: the same keys, conditions
//! evaluated atomically with the write, sort-key order by UTF-8 bytes, exact paging.
//!
//! Several processes may open the same file: every conditional write runs in an IMMEDIATE
//! transaction, so a lease taken with `NotExistsOrExpired` is taken by exactly one of them.

use super::sqlite_util::{self, prefix_successor, Db, OpenError};
use async_trait::async_trait;
use classy_sync_core::ports::store::validate_key;
use classy_sync_core::ports::{Condition, Item, Page, SkRange, Store, StoreError, WriteOp};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `PRAGMA application_id` of store files ("CSST").
const APPLICATION_ID: i32 = 0x4353_5354;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE items (
        pk         TEXT    NOT NULL,
        sk         TEXT    NOT NULL,
        data       TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        expires_at INTEGER,
        gsi1       TEXT,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX items_gsi1 ON items (gsi1) WHERE gsi1 IS NOT NULL;
"];

/// Items up to this size are accepted (the limits are the port's, shared by every adapter).
pub use classy_sync_core::ports::store::MAX_ITEM_BYTES;

const COLUMNS: &str = "pk, sk, data, version, expires_at, gsi1";
const SELECT_ONE: &str =
    "SELECT pk, sk, data, version, expires_at, gsi1 FROM items WHERE pk = ?1 AND sk = ?2";
const UPSERT: &str = "INSERT INTO items (pk, sk, data, version, expires_at, gsi1)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (pk, sk) DO UPDATE SET
        data = excluded.data, version = excluded.version,
        expires_at = excluded.expires_at, gsi1 = excluded.gsi1";
const DELETE: &str = "DELETE FROM items WHERE pk = ?1 AND sk = ?2";

/// The embedded store. Cheap to clone (one shared connection per `open`); open the file
/// again (or in another process) for a second connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    /// Opens or creates the store file (and its parent directories).
    ///
    /// A file that is not a SQLite database is left untouched and reported as
    /// `StoreError::Corrupt("<path>: file is not a database")`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let conn = sqlite_util::open_file(&path, APPLICATION_ID, MIGRATIONS)
            .map_err(|e| open_error(e, &path.display().to_string()))?;
        Ok(SqliteStore {
            db: Db::new(conn, Some(path)),
        })
    }

    /// A private in-memory store (tests, dry runs); gone when the last clone is dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = sqlite_util::open_memory(APPLICATION_ID, MIGRATIONS)
            .map_err(|e| open_error(e, ":memory:"))?;
        Ok(SqliteStore {
            db: Db::new(conn, None),
        })
    }

    /// The file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.db.path.as_deref()
    }

    /// Deletes items whose `expires_at` is before `now` (DynamoDB's TTL sweeper does this in
    /// the background; like DynamoDB, reads never hide expired items). Returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(
                    "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at < ?1",
                )?
                .execute([now])?)
        })
        .await
    }

    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let location = self.db.location.clone();
        self.db
            .run(f)
            .await
            .map_err(|fail| fail.into_store_error(&location))
    }
}

fn open_error(e: OpenError, location: &str) -> StoreError {
    let msg = e.describe(location, "store");
    if e.is_corrupt() {
        StoreError::Corrupt(msg)
    } else {
        StoreError::Unavailable(msg)
    }
}

/// An error inside a blocking call, before the file's location is attached.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    fn into_store_error(self, location: &str) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Sql(e) if sqlite_util::is_corrupt(&e) => {
                StoreError::Corrupt(format!("{location}: {e}"))
            }
            Fail::Sql(rusqlite::Error::IntegralValueOutOfRange(col, v)) => {
                StoreError::Corrupt(format!("{location}: column {col} holds {v}, out of range"))
            }
            Fail::Sql(e) => StoreError::Unavailable(format!("{location}: {e}")),
        }
    }
}

fn read_item(row: &Row<'_>) -> rusqlite::Result<Item> {
    let version: i64 = row.get(3)?;
    Ok(Item {
        pk: row.get(0)?,
        sk: row.get(1)?,
        data: row.get(2)?,
        version: u64::try_from(version)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, version))?,
        expires_at: row.get(4)?,
        gsi1: row.get(5)?,
    })
}

/// Evaluates `cond` against the stored item, inside the caller's transaction.
fn check(conn: &Connection, pk: &str, sk: &str, cond: Condition) -> Result<(), Fail> {
    if cond == Condition::Always {
        return Ok(());
    }
    let stored: Option<(i64, Option<i64>)> = conn
        .prepare_cached("SELECT version, expires_at FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row([pk, sk], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let holds = match (cond, stored) {
        (Condition::Always, _) => true,
        (Condition::NotExists, stored) => stored.is_none(),
        (Condition::VersionIs(v), Some((stored_v, _))) => u64::try_from(stored_v) == Ok(v),
        (Condition::VersionIs(_), None) => false,
        (Condition::NotExistsOrExpired { .. }, None) => true,
        (Condition::NotExistsOrExpired { now }, Some((_, Some(expires_at)))) => expires_at < now,
        (Condition::NotExistsOrExpired { .. }, Some((_, None))) => false,
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
        }
        .into())
    }
}

fn apply(conn: &Connection, op: &WriteOp) -> Result<(), Fail> {
    match op {
        WriteOp::Put(item) => {
            conn.prepare_cached(UPSERT)?.execute(params![
                item.pk,
                item.sk,
                item.data,
                item.version as i64,
                item.expires_at,
                item.gsi1
            ])?;
        }
        WriteOp::Delete { pk, sk } => {
            conn.prepare_cached(DELETE)?.execute([pk, sk])?;
        }
    }
    Ok(())
}

/// Lower and upper sort-key bounds (value, inclusive) for a query.
type Bound = Option<(String, bool)>;

fn bounds(range: &SkRange, start_after: Option<&str>) -> (Bound, Bound) {
    let (lower, upper): (Bound, Bound) = match range {
        SkRange::All => (None, None),
        SkRange::Prefix(p) if p.is_empty() => (None, None),
        SkRange::Prefix(p) => (
            Some((p.clone(), true)),
            prefix_successor(p).map(|s| (s, false)),
        ),
        SkRange::Between(lo, hi) => (Some((lo.clone(), true)), Some((hi.clone(), true))),
    };
    let lower = match (lower, start_after) {
        (lower, None) => lower,
        (Some((lo, incl)), Some(after)) if lo.as_str() > after => Some((lo, incl)),
        (_, Some(after)) => Some((after.to_owned(), false)),
    };
    (lower, upper)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        validate_key(pk, sk)?;
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(SELECT_ONE)?
                .query_row([&pk, &sk], read_item)
                .optional()?)
        })
        .await
    }

    async fn batch_get(&self, pk: &str, sks: &[String]) -> Result<Vec<Item>, StoreError> {
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(sks.len());
        for sk in sks {
            validate_key(pk, sk)?;
            if seen.insert(sk.as_str()) {
                keys.push(sk.clone());
            }
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let pk = pk.to_owned();
        self.call(move |conn| {
            // One read transaction: a consistent snapshot, and point lookups on a cached
            // statement are faster than building IN lists.
            let tx = conn.transaction()?;
            let mut out = Vec::with_capacity(keys.len());
            {
                let mut stmt = tx.prepare_cached(SELECT_ONE)?;
                for sk in &keys {
                    if let Some(item) = stmt.query_row([&pk, sk], read_item).optional()? {
                        out.push(item);
                    }
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<(), StoreError> {
        item.validate()?;
        self.call(move |conn| {
            let op = WriteOp::Put(item);
            if cond == Condition::Always {
                return apply(conn, &op);
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (pk, sk) = op.key();
            check(&tx, pk, sk, cond)?;
            apply(&tx, &op)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> Result<(), StoreError> {
        validate_key(pk, sk)?;
        let op = WriteOp::Delete {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
        };
        self.call(move |conn| {
            if cond == Condition::Always {
                return apply(conn, &op);
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (pk, sk) = op.key();
            check(&tx, pk, sk, cond)?;
            apply(&tx, &op)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn query(
        &self,
        pk: &str,
        range: &SkRange,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        if pk.is_empty() {
            return Err(StoreError::Invalid("query: empty partition key".into()));
        }
        if limit == 0 {
            return Err(StoreError::Invalid(
                "query: limit must be at least 1".into(),
            ));
        }
        let (lower, upper) = bounds(range, start_after);
        let mut sql = format!("SELECT {COLUMNS} FROM items WHERE pk = ?1");
        match &lower {
            Some((_, true)) => sql.push_str(" AND sk >= ?2"),
            Some((_, false)) => sql.push_str(" AND sk > ?2"),
            None => {}
        }
        match &upper {
            Some((_, true)) => sql.push_str(" AND sk <= ?3"),
            Some((_, false)) => sql.push_str(" AND sk < ?3"),
            None => {}
        }
        sql.push_str(" ORDER BY sk LIMIT ?4");
        // One extra row tells whether another page follows.
        let fetch = i64::try_from(limit)
            .unwrap_or(i64::MAX - 1)
            .min(i64::MAX - 1)
            + 1;
        let pk = pk.to_owned();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![pk, lower.map(|b| b.0), upper.map(|b| b.0), fetch],
                read_item,
            )?;
            let mut items = rows.collect::<rusqlite::Result<Vec<Item>>>()?;
            let next = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|i| i.sk.clone())
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        for op in &ops {
            op.validate()?;
        }
        self.call(move |conn| {
            // One transaction for the whole batch: one WAL commit instead of one per item.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for op in &ops {
                apply(&tx, op)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn transact(&self, ops: Vec<(WriteOp, Condition)>) -> Result<(), StoreError> {
        classy_sync_core::ports::store::validate_transaction(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // All conditions against the state before the transaction, then all writes;
            // dropping `tx` on a failed condition rolls everything back.
            for (op, cond) in &ops {
                let (pk, sk) = op.key();
                check(&tx, pk, sk, *cond)?;
            }
            for (op, _) in &ops {
                apply(&tx, op)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Chunks of 50,000 rows per transaction: a purge of millions of items neither holds
    /// one giant write transaction nor reads every item back first.
    async fn delete_range(&self, pk: &str, range: &SkRange) -> Result<u64, StoreError> {
        if pk.is_empty() {
            return Err(StoreError::Invalid(
                "delete_range: empty partition key".into(),
            ));
        }
        let (lower, upper) = bounds(range, None);
        // Numbered parameters only for the bounds present: SQLite counts up to the highest.
        let mut inner = String::from("SELECT sk FROM items WHERE pk = ?1");
        let mut values = vec![pk.to_owned()];
        for (bound, incl, excl) in [(&lower, ">=", ">"), (&upper, "<=", "<")] {
            if let Some((v, inclusive)) = bound {
                values.push(v.clone());
                let op = if *inclusive { incl } else { excl };
                inner.push_str(&format!(" AND sk {op} ?{}", values.len()));
            }
        }
        let sql = format!("DELETE FROM items WHERE pk = ?1 AND sk IN ({inner} LIMIT 50000)");
        let mut deleted = 0u64;
        loop {
            let (sql, values) = (sql.clone(), values.clone());
            let n = self
                .call(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let n = tx
                        .prepare_cached(&sql)?
                        .execute(rusqlite::params_from_iter(values.iter()))?;
                    tx.commit()?;
                    Ok(n)
                })
                .await?;
            if n == 0 {
                return Ok(deleted);
            }
            deleted += n as u64;
        }
    }

    async fn query_gsi1(&self, key: &str, limit: usize) -> Result<Vec<Item>, StoreError> {
        if key.is_empty() {
            return Err(StoreError::Invalid("query_gsi1: empty key".into()));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = key.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM items WHERE gsi1 = ?1 ORDER BY pk, sk LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![key, limit], read_item)?;
            Ok(rows.collect::<rusqlite::Result<Vec<Item>>>()?)
        })
        .await
    }
}
