//! A job queue with SQS semantics: at-least-once delivery, a visibility timeout, a receive
//! count, and dead letters after too many receives.

use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    pub body: String,
    /// Messages with the same id are not enqueued twice while one is still live.
    pub dedup_id: Option<String>,
    /// Ordering group (FIFO queues); the organization id for sync jobs.
    pub group_id: Option<String>,
    pub delay: Duration,
}

impl OutMessage {
    pub fn new(body: impl Into<String>) -> Self {
        OutMessage {
            body: body.into(),
            dedup_id: None,
            group_id: None,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: String,
    /// Handle for delete / release; valid for this receive only.
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub visible: u64,
    pub in_flight: u64,
    pub dead: u64,
    /// Age of the oldest live message in seconds.
    pub oldest_age_secs: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("receipt is no longer valid: {0}")]
    StaleReceipt(String),
    #[error("invalid queue request: {0}")]
    Invalid(String),
    /// The queue took some messages of a batch and refused others (SQS answers per entry).
    #[error("queue refused {} of the batch's messages: {message}", failed.len())]
    Partial {
        /// Positions in the batch of the messages not enqueued.
        failed: Vec<usize>,
        message: String,
    },
}

/// What [`send_in_batches`] could not enqueue.
#[derive(Debug, Default)]
pub struct NotSent {
    /// Positions in the input of the messages not enqueued.
    pub positions: Vec<usize>,
    /// The first error met, for the report.
    pub first_error: Option<String>,
}

/// Sends `messages` in batches of [`MAX_SEND_BATCH`], every batch whatever happened to the
/// one before, and says exactly which messages were not enqueued: a batch the queue refused
/// whole counts all of its messages, a partly refused one only those the queue names.
pub async fn send_in_batches(queue: &dyn JobQueue, messages: Vec<OutMessage>) -> NotSent {
    let mut not_sent = NotSent::default();
    let mut offset = 0;
    let mut rest = messages;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_SEND_BATCH));
        let batch = std::mem::replace(&mut rest, tail);
        let n = batch.len();
        match queue.send_batch(batch).await {
            Ok(()) => {}
            Err(QueueError::Partial { failed, message }) => {
                not_sent
                    .positions
                    .extend(failed.into_iter().filter(|i| *i < n).map(|i| offset + i));
                not_sent.first_error.get_or_insert(message);
            }
            Err(e) => {
                not_sent.positions.extend(offset..offset + n);
                not_sent.first_error.get_or_insert(e.to_string());
            }
        }
        offset += n;
    }
    not_sent
}

/// SQS's batch limit.
pub const MAX_SEND_BATCH: usize = 10;

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send_batch(&self, messages: Vec<OutMessage>) -> Result<(), QueueError>;

    /// Up to `max` visible messages, hidden for `visibility` unless deleted or released.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError>;

    /// Acknowledges a message: it is done.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Makes a received message visible again after `delay` (a retry, or a clean shutdown).
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;

    async fn stats(&self) -> Result<QueueStats, QueueError>;

    /// Messages that exceeded the receive limit, oldest first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<Received>, QueueError>;

    /// Moves dead letters back to the queue; returns how many moved.
    async fn redrive(&self, ids: &[String]) -> Result<usize, QueueError>;
}
