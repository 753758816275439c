//! Delivery records: one store item per message × channel (`NOTIFY` /
//! `DELIVERY#<channel>#<message id>`) with status, attempts, last error and the time of the
//! next attempt, and the message's digest and size. A message of at most
//! [`INLINE_MESSAGE_MAX`] bytes (an alert, a test) is kept whole, so a retry can send it again;
//! a larger one (a report over many organizations) is kept as a bounded stand-in marked
//! incomplete, and its producer rebuilds it to retry (the report run does, see
//! `classy_sync_core::engine::reports`): a record stays far below DynamoDB's 400 KB item limit.
//!
//! Sending is claimed with a versioned write before the channel is called: two workers that
//! race on the same delivery cannot both send it, and a message already `sent` on a channel
//! is never sent again. A worker that dies after claiming leaves the record `pending` with a
//! next attempt a few minutes ahead, so a later retry picks it up.

use classy_sync_core::channels::NOTIFY_PK;
use classy_sync_core::ports::{
    Condition, DeliveryReport, DeliveryStatus, Item, Message, SkRange, Store, StoreError,
};
use serde::{Deserialize, Serialize};

pub use classy_sync_core::domain::keys::{delivery_sk, DELIVERY_PREFIX};
/// Records are kept this long (TTL), sent or not.
pub const DELIVERY_TTL_SECS: i64 = 30 * 24 * 3600;
/// How long a claimed (in-flight) delivery is left alone before a retry may take it over.
pub const CLAIM_SECS: i64 = 300;
/// A message whose JSON is larger than this is not kept whole in its delivery record.
pub const INLINE_MESSAGE_MAX: usize = 32 * 1024;

fn complete_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub message_id: String,
    pub channel: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Unix seconds; `None` once sent or given up.
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The message (whole when `complete`; otherwise a bounded stand-in, see
    /// [`Message::bounded`]).
    pub message: Message,
    /// Whether `message` is the whole message (a retry can send it as it is).
    #[serde(default = "complete_default")]
    pub complete: bool,
    /// `sha256:<hex>` of the whole message last handed over for this delivery.
    #[serde(default)]
    pub digest: String,
    /// The size of that whole message as JSON, in bytes.
    #[serde(default)]
    pub message_bytes: u64,
}

impl DeliveryRecord {
    pub fn report(&self) -> DeliveryReport {
        DeliveryReport {
            message_id: self.message_id.clone(),
            channel: self.channel.clone(),
            status: self.status,
            attempts: self.attempts,
            error: self.last_error.clone(),
            next_attempt_at: self.next_attempt_at,
            first_attempt_at: Some(self.created_at),
        }
    }

    /// Keeps `message` (whole if small enough), its digest and size.
    fn set_message(&mut self, message: &Message) {
        let (kept, complete) = message.bounded(INLINE_MESSAGE_MAX);
        self.digest = message.digest();
        self.message_bytes = message.json_len() as u64;
        self.message = kept;
        self.complete = complete;
    }

    /// Due for another attempt at `now` (ignoring the backoff when `force`).
    pub fn is_due(&self, now: i64, force: bool) -> bool {
        match self.status {
            DeliveryStatus::Sent => false,
            _ if force => true,
            _ => self.next_attempt_at.is_some_and(|t| t <= now),
        }
    }
}

/// The outcome of trying to claim a delivery for sending.
pub enum Claim {
    /// This caller may send; the record (attempts already counted) and its stored version.
    Go(DeliveryRecord, u64),
    /// Already sent, or another worker holds a fresh claim: do not send.
    Skip(DeliveryRecord),
}

fn item(rec: &DeliveryRecord, version: u64) -> Item {
    Item::json(NOTIFY_PK, delivery_sk(&rec.channel, &rec.message_id), rec)
        .with_version(version)
        .with_expiry(rec.created_at + DELIVERY_TTL_SECS)
}

pub async fn load(
    store: &dyn Store,
    channel: &str,
    message_id: &str,
) -> Result<Option<(DeliveryRecord, u64)>, StoreError> {
    match store
        .get(NOTIFY_PK, &delivery_sk(channel, message_id))
        .await?
    {
        Some(i) => Ok(Some((i.parse()?, i.version))),
        None => Ok(None),
    }
}

/// Claims the delivery of `message` on `channel` at `now`. A sent record or one another
/// worker claimed less than [`CLAIM_SECS`] ago is skipped; a failed one is taken when its next
/// attempt is due, or at once with `force` (even one given up on).
pub async fn claim(
    store: &dyn Store,
    message: &Message,
    channel: &str,
    now: i64,
    force: bool,
) -> Result<Claim, StoreError> {
    // Two rounds: a lost race re-reads once and then yields to the winner.
    for _ in 0..2 {
        let existing = load(store, channel, &message.id).await?;
        let (mut rec, cond, version) = match existing {
            None => (
                DeliveryRecord {
                    message_id: message.id.clone(),
                    channel: channel.to_owned(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    last_error: None,
                    next_attempt_at: None,
                    created_at: now,
                    updated_at: now,
                    message: message.clone(),
                    complete: true,
                    digest: String::new(),
                    message_bytes: 0,
                },
                Condition::NotExists,
                1,
            ),
            Some((rec, v)) => {
                let in_flight = rec.status == DeliveryStatus::Pending
                    && rec.next_attempt_at.is_some_and(|t| t > now);
                let waiting = rec.status == DeliveryStatus::Failed && !rec.is_due(now, force);
                if rec.status == DeliveryStatus::Sent || in_flight || waiting {
                    return Ok(Claim::Skip(rec));
                }
                (rec, Condition::VersionIs(v), v + 1)
            }
        };
        // What this attempt sends (a rebuilt report may differ from the first rendering).
        rec.set_message(message);
        rec.status = DeliveryStatus::Pending;
        rec.attempts += 1;
        rec.updated_at = now;
        rec.next_attempt_at = Some(now + CLAIM_SECS);
        match store.put(item(&rec, version), cond).await {
            Ok(()) => return Ok(Claim::Go(rec, version)),
            Err(e) if e.is_condition_failed() => continue,
            Err(e) => return Err(e),
        }
    }
    let (rec, _) = load(store, channel, &message.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("delivery record vanished during a claim".into()))?;
    Ok(Claim::Skip(rec))
}

/// Records the outcome of a claimed attempt. `retry_at` is when to try again (`None`: give up).
pub async fn finish(
    store: &dyn Store,
    mut rec: DeliveryRecord,
    version: u64,
    now: i64,
    outcome: Result<(), (String, Option<i64>)>,
) -> Result<DeliveryRecord, StoreError> {
    rec.updated_at = now;
    match outcome {
        Ok(()) => {
            rec.status = DeliveryStatus::Sent;
            rec.last_error = None;
            rec.next_attempt_at = None;
        }
        Err((error, retry_at)) => {
            rec.status = DeliveryStatus::Failed;
            rec.last_error = Some(error);
            rec.next_attempt_at = retry_at;
        }
    }
    store
        .put(item(&rec, version + 1), Condition::VersionIs(version))
        .await?;
    Ok(rec)
}

/// Every delivery record, optionally only those with `status`, in key order.
pub async fn list(
    store: &dyn Store,
    status: Option<DeliveryStatus>,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut out = Vec::new();
    let range = SkRange::prefix(DELIVERY_PREFIX);
    classy_sync_core::ports::store::for_each_page(store, NOTIFY_PK, &range, 200, |items| {
        for i in items {
            let rec: DeliveryRecord = i.parse()?;
            if status.is_none_or(|s| s == rec.status) {
                out.push(rec);
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}
