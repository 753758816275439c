//! [`EventBus`] on Amazon EventBridge: `PutEvents` in batches of ten, with `Source`
//! `classy-sync`, the event's `DetailType`, `Detail` (JSON) and `Time`, on the configured bus.
//! Entries EventBridge did not accept (`FailedEntryCount`) are sent again, only those, with
//! backoff; what is still refused after the last attempt is `EventError::Rejected`.

use super::RetryPolicy;
use async_trait::async_trait;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use classy_sync_core::ports::events::{EVENT_SOURCE, MAX_EVENTS_PER_CALL};
use classy_sync_core::ports::{Event, EventBus, EventError};

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus: String,
    retry: RetryPolicy,
}

impl EventBridgeBus {
    /// Publishes on the bus named `bus` (`default` for the account's default bus).
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus: bus.into(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn from_settings(sdk: &aws_config::SdkConfig, settings: &super::AwsSettings) -> Self {
        EventBridgeBus::new(Client::new(sdk), &settings.event_bus)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    fn entry(&self, e: &Event) -> Result<PutEventsRequestEntry, EventError> {
        let detail = serde_json::to_string(&e.detail)
            .map_err(|err| EventError::Unavailable(format!("event detail: {err}")))?;
        Ok(PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(&e.detail_type)
            .detail(detail)
            .event_bus_name(&self.bus)
            .time(DateTime::from_millis(e.time.timestamp_millis()))
            .build())
    }

    async fn publish_chunk(&self, entries: Vec<PutEventsRequestEntry>) -> Result<(), EventError> {
        let total = entries.len();
        let mut pending = entries;
        let mut attempt = 0;
        loop {
            let out = self
                .client
                .put_events()
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| {
                    EventError::Unavailable(format!(
                        "EventBridge PutEvents: {}",
                        super::describe(&e)
                    ))
                })?;
            attempt += 1;
            if out.failed_entry_count() == 0 {
                return Ok(());
            }
            // Results are in request order; a failed one carries an error code.
            let results = out.entries();
            let mut failed = Vec::new();
            let mut reason = String::new();
            for (i, entry) in pending.iter().enumerate() {
                match results.get(i) {
                    Some(r) if r.error_code().is_none() => {}
                    r => {
                        if reason.is_empty() {
                            reason = match r.and_then(|r| r.error_code()) {
                                Some(code) => format!(
                                    "{code}: {}",
                                    r.and_then(|r| r.error_message()).unwrap_or("no message")
                                ),
                                None => "no result for the entry".into(),
                            };
                        }
                        failed.push(entry.clone());
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            if attempt >= self.retry.attempts.max(1) {
                return Err(EventError::Rejected {
                    failed: failed.len(),
                    total,
                    reason: format!("after {attempt} attempts, {reason}"),
                });
            }
            tokio::time::sleep(self.retry.delay(attempt - 1)).await;
            pending = failed;
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), EventError> {
        let total = events.len();
        let mut rejected = 0;
        let mut first_reason = None;
        for chunk in events.chunks(MAX_EVENTS_PER_CALL) {
            let entries = chunk
                .iter()
                .map(|e| self.entry(e))
                .collect::<Result<Vec<_>, _>>()?;
            match self.publish_chunk(entries).await {
                Ok(()) => {}
                Err(EventError::Rejected { failed, reason, .. }) => {
                    rejected += failed;
                    first_reason.get_or_insert(reason);
                }
                Err(e) => return Err(e),
            }
        }
        match first_reason {
            None => Ok(()),
            Some(reason) => Err(EventError::Rejected {
                failed: rejected,
                total,
                reason,
            }),
        }
    }
}

/// Opens EventBridge buses by name or ARN (the change feed's customer buses). The client is
/// built on first use from the given SDK configuration, or from the environment when none
/// was given (local runs that rarely target EventBridge pay nothing for it).
#[derive(Debug, Clone, Default)]
pub struct EventBridgeConnector {
    client: std::sync::Arc<tokio::sync::OnceCell<Client>>,
}

impl EventBridgeConnector {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        EventBridgeConnector {
            client: std::sync::Arc::new(tokio::sync::OnceCell::new_with(Some(Client::new(sdk)))),
        }
    }

    /// A connector that loads the SDK configuration from the environment when first used.
    pub fn from_env_on_first_use() -> Self {
        Self::default()
    }
}

#[async_trait]
impl classy_sync_core::ports::EventBusConnector for EventBridgeConnector {
    async fn connect(
        &self,
        bus: &str,
    ) -> Result<std::sync::Arc<dyn EventBus>, classy_sync_core::ports::EventError> {
        let client = self
            .client
            .get_or_init(|| async { Client::new(&super::sdk_config().await) })
            .await;
        Ok(std::sync::Arc::new(EventBridgeBus::new(
            client.clone(),
            bus,
        )))
    }
}
