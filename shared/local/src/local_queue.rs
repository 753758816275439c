//! [`JobQueue`] on its own SQLite file, with SQS's semantics: at-least-once delivery, a
//! visibility timeout, a receive count, a fresh receipt per receive, dead letters after
//! `max_receives`, and SQS's request limits.
//!
//! Several processes may share the file: a receive claims its messages inside one IMMEDIATE
//! transaction, so no message is handed to two receivers while it is in flight.
//! Time comes from the injected [`Clock`], so tests can move it.

use super::sqlite_util::{self, Db, OpenError};
use async_trait::async_trait;
use classy_sync_core::ports::queue::MAX_SEND_BATCH;
use classy_sync_core::ports::{Clock, JobQueue, OutMessage, QueueError, QueueStats, Received};
use rusqlite::{params, Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `PRAGMA application_id` of queue files ("CSQU").
const APPLICATION_ID: i32 = 0x4353_5155;

/// Times are unix milliseconds. A message is live while `dead_at` is NULL; `receipt` is the
/// handle of its latest receive. Dedup ids are unique among live messages only.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE messages (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        id            TEXT    NOT NULL UNIQUE,
        body          TEXT    NOT NULL,
        dedup_id      TEXT,
        group_id      TEXT,
        sent_at       INTEGER NOT NULL,
        visible_at    INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt       TEXT    UNIQUE,
        dead_at       INTEGER
    );
    CREATE INDEX messages_ready ON messages (visible_at, seq) WHERE dead_at IS NULL;
    CREATE UNIQUE INDEX messages_dedup ON messages (dedup_id)
        WHERE dead_at IS NULL AND dedup_id IS NOT NULL;
    CREATE INDEX messages_dead ON messages (seq) WHERE dead_at IS NOT NULL;
"];

/// SQS's limits.
pub const MAX_RECEIVE: usize = 10;
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    /// Deliveries before a message moves to the dead letters (SQS `maxReceiveCount`).
    pub max_receives: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions { max_receives: 5 }
    }
}

pub struct LocalQueue {
    db: Db,
    options: QueueOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueue")
            .field("location", &self.db.location)
            .field("options", &self.options)
            .finish()
    }
}

impl LocalQueue {
    /// Opens or creates the queue file (keep it separate from the store's file).
    pub fn open(
        path: impl AsRef<Path>,
        options: QueueOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, QueueError> {
        validate_options(&options)?;
        let path: PathBuf = path.as_ref().to_path_buf();
        let conn = sqlite_util::open_file(&path, APPLICATION_ID, MIGRATIONS)
            .map_err(|e| open_error(e, &path.display().to_string()))?;
        Ok(LocalQueue {
            db: Db::new(conn, Some(path)),
            options,
            clock,
        })
    }

    /// A private in-memory queue (tests).
    pub fn in_memory(options: QueueOptions, clock: Arc<dyn Clock>) -> Result<Self, QueueError> {
        validate_options(&options)?;
        let conn = sqlite_util::open_memory(APPLICATION_ID, MIGRATIONS)
            .map_err(|e| open_error(e, ":memory:"))?;
        Ok(LocalQueue {
            db: Db::new(conn, None),
            options,
            clock,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.db.path.as_deref()
    }

    pub fn options(&self) -> QueueOptions {
        self.options
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    async fn call<T, F>(&self, f: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let location = self.db.location.clone();
        self.db.run(f).await.map_err(|fail| match fail {
            Fail::Queue(e) => e,
            Fail::Sql(e) => QueueError::Unavailable(format!("{location}: {e}")),
        })
    }
}

fn validate_options(options: &QueueOptions) -> Result<(), QueueError> {
    if options.max_receives == 0 {
        return Err(QueueError::Invalid(
            "max_receives must be at least 1".into(),
        ));
    }
    Ok(())
}

fn open_error(e: OpenError, location: &str) -> QueueError {
    QueueError::Unavailable(e.describe(location, "queue"))
}

enum Fail {
    Sql(rusqlite::Error),
    Queue(QueueError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

fn millis(d: Duration, what: &str, max: Duration) -> Result<i64, QueueError> {
    if d > max {
        return Err(QueueError::Invalid(format!(
            "{what} of {d:?} exceeds the limit of {max:?}"
        )));
    }
    // Bounded by `max`, so it fits.
    Ok(d.as_millis() as i64)
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

#[async_trait]
impl JobQueue for LocalQueue {
    async fn send_batch(&self, messages: Vec<OutMessage>) -> Result<(), QueueError> {
        if messages.len() > MAX_SEND_BATCH {
            return Err(QueueError::Invalid(format!(
                "batch of {} messages; the limit is {MAX_SEND_BATCH}",
                messages.len()
            )));
        }
        let mut rows = Vec::with_capacity(messages.len());
        for m in messages {
            if m.body.is_empty() || m.body.len() > MAX_BODY_BYTES {
                return Err(QueueError::Invalid(format!(
                    "message body of {} bytes; must be 1..={MAX_BODY_BYTES}",
                    m.body.len()
                )));
            }
            let delay = millis(m.delay, "delay", MAX_DELAY)?;
            rows.push((m, delay));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                // A dedup id already live (or earlier in this batch) makes the insert a no-op.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO messages (id, body, dedup_id, group_id, sent_at, visible_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )?;
                for (m, delay) in &rows {
                    insert.execute(params![
                        new_token(),
                        m.body,
                        m.dedup_id,
                        m.group_id,
                        now,
                        now + delay
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        if max == 0 || max > MAX_RECEIVE {
            return Err(QueueError::Invalid(format!(
                "receive of {max} messages; must be 1..={MAX_RECEIVE}"
            )));
        }
        let visibility = millis(visibility, "visibility timeout", MAX_VISIBILITY)?;
        let now = self.now_ms();
        let max_receives = i64::from(self.options.max_receives);
        self.call(move |conn| {
            // IMMEDIATE takes the write lock before reading, so two processes never claim the
            // same message.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            {
                let mut ready = tx.prepare_cached(
                    "SELECT seq, id, body, receive_count FROM messages
                     WHERE dead_at IS NULL AND visible_at <= ?1 ORDER BY seq LIMIT ?2",
                )?;
                let mut kill = tx.prepare_cached(
                    "UPDATE messages SET dead_at = ?2, receipt = NULL WHERE seq = ?1",
                )?;
                let mut claim = tx.prepare_cached(
                    "UPDATE messages SET receive_count = ?2, receipt = ?3, visible_at = ?4
                     WHERE seq = ?1",
                )?;
                loop {
                    let need = max - out.len();
                    if need == 0 {
                        break;
                    }
                    let batch = ready
                        .query_map(params![now, need as i64], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, i64>(3)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    if batch.is_empty() {
                        break;
                    }
                    for (seq, id, body, received) in batch {
                        if received >= max_receives {
                            // SQS moves it on the receive that would exceed the limit.
                            kill.execute(params![seq, now])?;
                            continue;
                        }
                        let receipt = new_token();
                        claim.execute(params![seq, received + 1, receipt, now + visibility])?;
                        out.push(Received {
                            id,
                            receipt,
                            body,
                            receive_count: count(received + 1),
                        });
                    }
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.call(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM messages WHERE receipt = ?1 AND dead_at IS NULL")?
                .execute([&receipt])?;
            if n == 0 {
                return Err(Fail::Queue(QueueError::StaleReceipt(receipt)));
            }
            Ok(())
        })
        .await
    }

    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let delay = millis(delay, "release delay", MAX_VISIBILITY)?;
        let visible_at = self.now_ms() + delay;
        let receipt = receipt.to_owned();
        self.call(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE messages SET visible_at = ?2 WHERE receipt = ?1 AND dead_at IS NULL",
                )?
                .execute(params![receipt, visible_at])?;
            if n == 0 {
                return Err(Fail::Queue(QueueError::StaleReceipt(receipt)));
            }
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let now = self.now_ms();
        self.call(move |conn| {
            let (visible, in_flight, dead, oldest): (i64, i64, i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT
                        COALESCE(SUM(dead_at IS NULL AND visible_at <= ?1), 0),
                        COALESCE(SUM(dead_at IS NULL AND visible_at > ?1
                                     AND receipt IS NOT NULL), 0),
                        COALESCE(SUM(dead_at IS NOT NULL), 0),
                        MIN(CASE WHEN dead_at IS NULL THEN sent_at END)
                     FROM messages",
                )?
                .query_row([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(QueueStats {
                visible: visible.max(0) as u64,
                in_flight: in_flight.max(0) as u64,
                dead: dead.max(0) as u64,
                oldest_age_secs: oldest.map(|sent| ((now - sent).max(0) / 1000) as u64),
            })
        })
        .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<Received>, QueueError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, body, receive_count FROM messages
                     WHERE dead_at IS NOT NULL ORDER BY seq LIMIT ?1",
                )?
                .query_map([limit], |r| {
                    Ok(Received {
                        id: r.get(0)?,
                        // Dead letters cannot be deleted or released by receipt; redrive them.
                        receipt: String::new(),
                        body: r.get(1)?,
                        receive_count: count(r.get(2)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn redrive(&self, ids: &[String]) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids = ids.to_vec();
        let now = self.now_ms();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut moved = 0;
            {
                // OR IGNORE: a dead letter whose dedup id is live again stays dead.
                let mut back = tx.prepare_cached(
                    "UPDATE OR IGNORE messages
                     SET dead_at = NULL, receive_count = 0, receipt = NULL, visible_at = ?2
                     WHERE id = ?1 AND dead_at IS NOT NULL",
                )?;
                for id in &ids {
                    moved += back.execute(params![id, now])?;
                }
            }
            tx.commit()?;
            Ok(moved)
        })
        .await
    }
}
