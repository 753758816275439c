//! [`JobQueue`] on an SQS queue and its dead-letter queue.
//!
//! The queue's `RedrivePolicy` (`maxReceiveCount`) moves a message to the DLQ after too many
//! receives; SQS does that itself on the receive after the limit. A `.fifo` queue URL
//! selects FIFO sends: `MessageGroupId` is the message's group (the organization for sync
//! jobs) and `MessageDeduplicationId` its dedup id. FIFO queues refuse per-message delays,
//! so a delayed message for a FIFO queue is `QueueError::Invalid`; standard queues take the
//! delay and ignore dedup ids (SQS standard queues cannot deduplicate).
//!
//! SQS counts are approximate and an old receipt handle is not always refused: this adapter
//! passes the conformance rules of `QueueProfile { exact: false, .. }`.

use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use classy_sync_core::ports::queue::MAX_SEND_BATCH;
use classy_sync_core::ports::{JobQueue, OutMessage, QueueError, QueueStats, Received};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// SQS limits.
const MAX_RECEIVE: usize = 10;
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// How long `redrive` hides the dead letters it is looking through.
const REDRIVE_HOLD_SECS: i32 = 30;

/// The SQS queue. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: Option<String>,
    fifo: bool,
    wait_secs: i32,
}

impl SqsQueue {
    /// The queue at `queue_url`, with its dead-letter queue if there is one. Receives wait
    /// up to one second for messages (short polling would often miss them).
    pub fn new(client: Client, queue_url: impl Into<String>, dlq_url: Option<String>) -> Self {
        let queue_url = queue_url.into();
        SqsQueue {
            fifo: queue_url.ends_with(".fifo"),
            client,
            queue_url,
            dlq_url,
            wait_secs: 1,
        }
    }

    /// The queue of `settings` with a client for `sdk`.
    pub fn from_settings(sdk: &aws_config::SdkConfig, settings: &super::AwsSettings) -> Self {
        SqsQueue::new(
            Client::new(sdk),
            &settings.queue_url,
            settings.dlq_url.clone(),
        )
    }

    /// How long a receive waits for messages (`WaitTimeSeconds`, at most 20 s; 0 polls).
    pub fn with_wait_time(mut self, wait: Duration) -> Self {
        self.wait_secs = wait.as_secs().min(20) as i32;
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dlq_url(&self) -> Option<&str> {
        self.dlq_url.as_deref()
    }

    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    fn entry(&self, i: usize, m: OutMessage) -> Result<SendMessageBatchRequestEntry, QueueError> {
        let mut e = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(&m.body);
        if self.fifo {
            if !m.delay.is_zero() {
                return Err(QueueError::Invalid(
                    "FIFO queues do not support per-message delays".into(),
                ));
            }
            // Without a group there is no ordering to keep: a group of its own lets the
            // message go out in parallel with all others.
            let group = m
                .group_id
                .clone()
                .unwrap_or_else(|| format!("m-{}", uuid::Uuid::new_v4().simple()));
            let dedup = match m.dedup_id {
                Some(d) => fifo_id(&d),
                None => hex::encode(Sha256::digest(m.body.as_bytes())),
            };
            e = e
                .message_group_id(fifo_id(&group))
                .message_deduplication_id(dedup);
        } else {
            e = e.delay_seconds(m.delay.as_secs() as i32);
        }
        e.build()
            .map_err(|e| QueueError::Invalid(format!("SQS request: {e}")))
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: i32,
        wait: i32,
    ) -> Result<Vec<(Received, Option<String>, u64)>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max as i32)
            .visibility_timeout(visibility)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", &e))?;
        let mut got = Vec::new();
        for m in out.messages() {
            let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                return Err(QueueError::Unavailable(
                    "ReceiveMessage: message without id or receipt handle".into(),
                ));
            };
            let attr = |a: MessageSystemAttributeName| m.attributes().and_then(|x| x.get(&a));
            let receive_count = attr(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let sent = attr(MessageSystemAttributeName::SentTimestamp)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let group = attr(MessageSystemAttributeName::MessageGroupId).cloned();
            got.push((
                Received {
                    id: id.to_owned(),
                    receipt: receipt.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count,
                },
                group,
                sent,
            ));
        }
        Ok(got)
    }

    async fn attributes(
        &self,
        url: &str,
        names: &[QueueAttributeName],
    ) -> Result<HashMap<QueueAttributeName, u64>, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| unavailable("GetQueueAttributes", &e))?;
        Ok(out
            .attributes()
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// FIFO group and dedup ids: at most 128 characters of `[!-~]`; others are hashed.
fn fifo_id(id: &str) -> String {
    if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        id.to_owned()
    } else {
        hex::encode(Sha256::digest(id.as_bytes()))
    }
}

fn unavailable<E, R>(op: &str, e: &SdkError<E, R>) -> QueueError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    QueueError::Unavailable(format!("SQS {op}: {}", super::describe(e)))
}

/// Errors about the receipt handle (already deleted, superseded, made up) are stale receipts.
fn receipt_error<E, R>(op: &str, e: &SdkError<E, R>) -> QueueError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(s) = e {
        let err = s.err();
        let code = err.code().unwrap_or_default();
        let stale = code.contains("ReceiptHandleIsInvalid")
            || code.contains("MessageNotInflight")
            || (code.contains("InvalidParameterValue")
                && err.message().unwrap_or_default().contains("ReceiptHandle"));
        if stale {
            return QueueError::StaleReceipt(format!("SQS {op}: {}", super::describe(e)));
        }
    }
    unavailable(op, e)
}

fn secs(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send_batch(&self, messages: Vec<OutMessage>) -> Result<(), QueueError> {
        if messages.len() > MAX_SEND_BATCH {
            return Err(QueueError::Invalid(format!(
                "send_batch of {} messages; the limit is {MAX_SEND_BATCH}",
                messages.len()
            )));
        }
        if let Some(m) = messages.iter().find(|m| m.delay > MAX_DELAY) {
            return Err(QueueError::Invalid(format!(
                "delay of {} s; the limit is {} s",
                m.delay.as_secs(),
                MAX_DELAY.as_secs()
            )));
        }
        if messages.is_empty() {
            return Ok(());
        }
        let total = messages.len();
        let entries = messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| self.entry(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| unavailable("SendMessageBatch", &e))?;
        let failed = out.failed();
        if failed.is_empty() {
            return Ok(());
        }
        let first = &failed[0];
        let reason = format!(
            "{}: {}",
            first.code(),
            first.message().unwrap_or("no message")
        );
        let message = format!(
            "SQS SendMessageBatch: {} of {total} messages failed (first: {reason})",
            failed.len()
        );
        // Entry ids are the positions in the batch (see `entry`): the others were enqueued.
        let positions = failed
            .iter()
            .map(|f| f.id().parse::<usize>())
            .collect::<Result<Vec<_>, _>>();
        match positions {
            Ok(failed) => Err(QueueError::Partial { failed, message }),
            Err(_) => Err(QueueError::Unavailable(format!(
                "{message}; SQS named entries that were not sent"
            ))),
        }
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        if max == 0 || max > MAX_RECEIVE {
            return Err(QueueError::Invalid(format!(
                "receive of {max} messages; between 1 and {MAX_RECEIVE}"
            )));
        }
        if visibility > MAX_VISIBILITY {
            return Err(QueueError::Invalid(format!(
                "visibility of {} s; the limit is {} s",
                visibility.as_secs(),
                MAX_VISIBILITY.as_secs()
            )));
        }
        let got = self
            .receive_from(&self.queue_url, max, secs(visibility), self.wait_secs)
            .await?;
        Ok(got.into_iter().map(|(r, _, _)| r).collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| receipt_error("DeleteMessage", &e))?;
        Ok(())
    }

    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_VISIBILITY {
            return Err(QueueError::Invalid(format!(
                "release delay of {} s; the limit is {} s",
                delay.as_secs(),
                MAX_VISIBILITY.as_secs()
            )));
        }
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(delay))
            .send()
            .await
            .map_err(|e| receipt_error("ChangeMessageVisibility", &e))?;
        Ok(())
    }

    /// SQS's approximate counts. Delayed messages are neither visible nor in flight (as in
    /// the local queue); `oldest_age_secs` is not available from the SQS API (only as the
    /// CloudWatch metric `ApproximateAgeOfOldestMessage`), so it is `None`.
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let main = self
            .attributes(
                &self.queue_url,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ],
            )
            .await?;
        let dead = match &self.dlq_url {
            None => 0,
            Some(dlq) => {
                let a = self
                    .attributes(
                        dlq,
                        &[
                            QueueAttributeName::ApproximateNumberOfMessages,
                            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                        ],
                    )
                    .await?;
                a.values().sum()
            }
        };
        let get = |k: QueueAttributeName| main.get(&k).copied().unwrap_or(0);
        Ok(QueueStats {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            dead,
            oldest_age_secs: None,
        })
    }

    /// Peeks at the DLQ: receives with a visibility timeout of zero, so the messages stay
    /// visible (each peek adds one to their receive count), oldest sent first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<Received>, QueueError> {
        let Some(dlq) = &self.dlq_url else {
            return Ok(Vec::new());
        };
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        let mut empty_polls = 0;
        while found.len() < limit && empty_polls < 2 {
            let want = (limit - found.len()).min(MAX_RECEIVE);
            let got = self.receive_from(dlq, want, 0, 0).await?;
            let before = found.len();
            for (r, _, sent) in got {
                if seen.insert(r.id.clone()) {
                    found.push((sent, r));
                }
            }
            if found.len() == before {
                empty_polls += 1;
            }
        }
        found.sort_by_key(|(sent, _)| *sent);
        found.truncate(limit);
        Ok(found.into_iter().map(|(_, r)| r).collect())
    }

    /// Sends each dead letter named in `ids` to the queue again (with a fresh receive count)
    /// and deletes it from the DLQ. Dead letters not named are made visible again at once.
    async fn redrive(&self, ids: &[String]) -> Result<usize, QueueError> {
        let Some(dlq) = &self.dlq_url else {
            return Ok(0);
        };
        let mut wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut moved = 0;
        let mut skipped = Vec::new();
        let mut empty_polls = 0;
        while !wanted.is_empty() && empty_polls < 2 {
            let got = self
                .receive_from(dlq, MAX_RECEIVE, REDRIVE_HOLD_SECS, 0)
                .await?;
            if got.is_empty() {
                empty_polls += 1;
                continue;
            }
            for (r, group, _) in got {
                if !wanted.remove(r.id.as_str()) {
                    skipped.push(r.receipt);
                    continue;
                }
                let mut send = self
                    .client
                    .send_message()
                    .queue_url(&self.queue_url)
                    .message_body(&r.body);
                if self.fifo {
                    // A new dedup id: the original one may still be inside SQS's 5-minute
                    // deduplication window, which would drop the redriven message.
                    send = send
                        .message_group_id(
                            group.unwrap_or_else(|| format!("m-{}", uuid::Uuid::new_v4().simple())),
                        )
                        .message_deduplication_id(fifo_id(&format!("redrive:{}", r.id)));
                }
                send.send()
                    .await
                    .map_err(|e| unavailable("SendMessage", &e))?;
                self.client
                    .delete_message()
                    .queue_url(dlq)
                    .receipt_handle(&r.receipt)
                    .send()
                    .await
                    .map_err(|e| unavailable("DeleteMessage", &e))?;
                moved += 1;
            }
        }
        for receipt in skipped {
            // Best effort: a message not made visible here comes back after the hold.
            let _ = self
                .client
                .change_message_visibility()
                .queue_url(dlq)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::fifo_id;

    #[test]
    fn fifo_ids_are_valid() {
        assert_eq!(fifo_id("sync:42:supporters"), "sync:42:supporters");
        let long = "x".repeat(200);
        assert_eq!(fifo_id(&long).len(), 64);
        assert_eq!(fifo_id("with space").len(), 64);
        assert_eq!(fifo_id("é").len(), 64);
    }
}
