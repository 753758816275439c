//! The change-feed destination: publishes `SupporterChanged` / `TransactionChanged` events to
//! a customer's EventBridge bus or to an HTTPS webhook signed with HMAC-SHA256
//! ([`classy_sync_core::signing`]), so any downstream system can follow the organization's data.
//!
//! Delivery contract (at least once, with ids to dedup on):
//! - every event has a stable `id` (`<entity>:<record id>:<content digest>`): the same record
//!   content is never sent again once a receiver acknowledged it (sent versions are
//!   remembered per record under `PLUGIN#change-feed#SENT#...`, written after the ack);
//! - before a batch is sent, its change ids are written as the in-flight batch
//!   (`PLUGIN#change-feed#PENDING`); if the run dies between the receiver's ack and the
//!   record, the next run sends that batch first, alone, byte-identical, with the same
//!   `X-Classy-Sync-Delivery` id (a digest of its change ids). A receiver that dedups on the
//!   delivery id (or on event ids) sees every change exactly once;
//! - if a record changed again in between, its old version is not re-sent: the new version
//!   (a new event id) is.

pub mod event;
pub mod settings;
pub mod webhook;

use super::PluginSpec;
use async_trait::async_trait;
use classy_sync_core::domain::keys;
use classy_sync_core::domain::keys::org_pk;
use classy_sync_core::ports::store::{Condition, Item, WriteOp};
use classy_sync_core::ports::{
    ChangeSet, Destination, DestinationContext, DestinationHealth, Event, EventBus, PluginConfig,
    PluginError, PushReport, Wants,
};
use classy_sync_http::url_guard::{CheckedUrl, UrlPolicy};
use event::{Change, Kind};
use serde::{Deserialize, Serialize};
use settings::{ChangeFeedSettings, TargetKind, WebhookCredential};
use std::collections::HashMap;
use std::sync::Arc;

pub const NAME: &str = "change-feed";

pub const SPEC: PluginSpec = PluginSpec {
    name: NAME,
    description: "Change feed: supporter and transaction changes to an EventBridge bus or a signed HTTPS webhook",
    wants: Wants {
        supporters: true,
        transactions: true,
        addresses: false,
    },
    needs_secret: false,
    validate: |v| ChangeFeedSettings::parse(v).map(|_| ()),
    build: |c| Ok(Box::new(ChangeFeedDestination::new(c)?)),
};

/// The version of a record last acknowledged by the receiver:
/// `PLUGIN#change-feed#SENT#<S|T>#<id>`.
pub fn sent_sk(kind: Kind, id: u64) -> String {
    let k = match kind {
        Kind::Supporter => "S",
        Kind::Transaction => "T",
    };
    format!("{}{k}#{id}", keys::plugin_family_prefix(NAME, "SENT"))
}

fn pending_sk() -> String {
    keys::plugin_item_sk(NAME, "PENDING")
}

#[derive(Debug, Serialize, Deserialize)]
struct Sent {
    digest: String,
}

/// The batch in flight: sent (maybe acknowledged) but not yet recorded.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Pending {
    delivery: String,
    changes: Vec<String>,
}

/// How long one webhook POST may take, and how long a 429's `Retry-After` may be waited out.
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const MAX_429_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

enum Sink {
    Webhook {
        url: CheckedUrl,
        client: reqwest::Client,
        signing_secret: secrecy::SecretString,
    },
    EventBridge(Arc<dyn EventBus>),
}

pub struct ChangeFeedDestination {
    settings: ChangeFeedSettings,
    secret_name: Option<String>,
    sink: Option<Sink>,
}

fn dest_err(m: impl Into<String>) -> PluginError {
    PluginError::destination(NAME, m)
}

impl ChangeFeedDestination {
    pub fn new(config: &PluginConfig) -> Result<Self, PluginError> {
        Ok(ChangeFeedDestination {
            settings: ChangeFeedSettings::parse(&config.settings)?,
            secret_name: config.secret_name.clone(),
            sink: None,
        })
    }

    /// The development flags count only with the deployment's switch (the settings were
    /// checked against it too; this holds if the switch was turned off since).
    fn url_policy(&self) -> UrlPolicy {
        let dev = classy_sync_http::dev_urls_allowed();
        UrlPolicy {
            allow_http_loopback: self.settings.allow_http_loopback && dev,
            allow_list: if dev {
                self.settings.allow_hosts.clone()
            } else {
                Vec::new()
            },
        }
    }

    async fn webhook_credential(
        &self,
        ctx: &DestinationContext,
    ) -> Result<WebhookCredential, PluginError> {
        let name = self.secret_name.clone().unwrap_or_else(|| {
            classy_sync_core::ports::destination::plugin_secret_name(ctx.org, NAME)
        });
        let raw = ctx
            .secrets
            .get(&name)
            .await
            .map_err(|e| PluginError::Credentials {
                plugin: NAME.into(),
                message: e.to_string(),
            })?;
        WebhookCredential::parse(&raw)
    }

    /// The sent versions of the records the changes are about.
    async fn sent_digests(
        &self,
        ctx: &DestinationContext,
        changes: &[Change],
    ) -> Result<HashMap<String, String>, PluginError> {
        let sks: Vec<String> = changes
            .iter()
            .map(|c| sent_sk(c.kind, c.record_id))
            .collect();
        let mut out = HashMap::with_capacity(sks.len());
        for chunk in sks.chunks(100) {
            for item in ctx.store.batch_get(&org_pk(ctx.org), chunk).await? {
                out.insert(item.sk.clone(), item.parse::<Sent>()?.digest);
            }
        }
        Ok(out)
    }

    async fn send(
        &self,
        ctx: &DestinationContext,
        delivery: &str,
        batch: &[Change],
    ) -> Result<(), PluginError> {
        match self
            .sink
            .as_ref()
            .ok_or_else(|| dest_err("used before prepare"))?
        {
            Sink::Webhook {
                url,
                client,
                signing_secret,
            } => {
                let body = event::webhook_body(delivery, ctx.org, batch);
                let clock = ctx.clock.clone();
                webhook::post(
                    client,
                    url,
                    signing_secret,
                    delivery,
                    body,
                    move || clock.unix(),
                    MAX_429_WAIT,
                )
                .await
                .map_err(|e| dest_err(format!("webhook delivery {delivery}: {e}")))
            }
            Sink::EventBridge(bus) => {
                let now = ctx.clock.now();
                let events = batch
                    .iter()
                    .map(|c| {
                        let mut detail = c.to_json();
                        detail["delivery"] = delivery.into();
                        Event {
                            detail_type: self.settings.detail_type(c.kind.event_type()),
                            detail,
                            time: now,
                        }
                    })
                    .collect();
                bus.publish(events)
                    .await
                    .map_err(|e| dest_err(format!("event bus {}: {e}", self.settings.bus())))
            }
        }
    }
}

#[async_trait]
impl Destination for ChangeFeedDestination {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn prepare(&mut self, ctx: &DestinationContext) -> Result<(), PluginError> {
        self.sink = Some(match self.settings.target {
            TargetKind::Webhook => {
                let cred = self.webhook_credential(ctx).await?;
                let url = self
                    .url_policy()
                    .check(secrecy::ExposeSecret::expose_secret(&cred.url))
                    .await
                    .map_err(|e| PluginError::config(NAME, format!("webhook url: {e}")))?;
                let client = url
                    .client(WEBHOOK_TIMEOUT)
                    .map_err(|e| dest_err(format!("HTTP client: {}", e.without_url())))?;
                Sink::Webhook {
                    url,
                    client,
                    signing_secret: cred.signing_secret,
                }
            }
            TargetKind::Eventbridge => {
                // The customer's bus, in the account/region the function runs with (a bus in
                // another account is named by ARN and must allow PutEvents from this one).
                let buses = ctx.buses.as_ref().ok_or_else(|| {
                    PluginError::config(
                        NAME,
                        "no event bus connector: EventBridge targets need AWS",
                    )
                })?;
                Sink::EventBridge(
                    buses
                        .connect(self.settings.bus())
                        .await
                        .map_err(|e| dest_err(format!("event bus {}: {e}", self.settings.bus())))?,
                )
            }
        });
        Ok(())
    }

    async fn push(
        &mut self,
        ctx: &DestinationContext,
        changes: &ChangeSet,
    ) -> Result<PushReport, PluginError> {
        let mut report = PushReport::default();
        let mut all: Vec<Change> = changes
            .supporters
            .iter()
            .map(|v| event::supporter_change(ctx.org, v))
            .collect();
        all.extend(
            changes
                .transactions
                .iter()
                .map(|t| event::transaction_change(ctx.org, t)),
        );
        report.considered = all.len() as u64;
        let sent = self.sent_digests(ctx, &all).await?;
        let todo: Vec<Change> = all
            .into_iter()
            .filter(|c| sent.get(&sent_sk(c.kind, c.record_id)) != Some(&c.digest))
            .collect();
        report.unchanged = report.considered - todo.len() as u64;
        if ctx.dry_run {
            for c in &todo {
                report.count(c.kind.name(), 1);
                report.diff.push(format!(
                    "{} {} ({})",
                    c.kind.event_type(),
                    c.record_id,
                    c.id()
                ));
            }
            report.sent = todo.len() as u64;
            return Ok(report);
        }
        let pk = org_pk(ctx.org);
        let pending: Pending = match ctx.store.get(&pk, &pending_sk()).await? {
            Some(i) => i.parse()?,
            None => Pending::default(),
        };
        for batch in event::batches(todo, &pending.changes, self.settings.batch_size()) {
            let ids: Vec<String> = batch.iter().map(Change::id).collect();
            let delivery = event::delivery_id(&ids);
            if !pending.changes.is_empty() && delivery == pending.delivery {
                report.count("redelivered_batches", 1);
            }
            ctx.store
                .put(
                    Item::json(
                        &pk,
                        pending_sk(),
                        &Pending {
                            delivery: delivery.clone(),
                            changes: ids,
                        },
                    ),
                    Condition::Always,
                )
                .await?;
            self.send(ctx, &delivery, &batch).await?;
            // Acknowledged: remember these versions, then forget the in-flight batch.
            let mut ops: Vec<WriteOp> = batch
                .iter()
                .map(|c| {
                    WriteOp::Put(Item::json(
                        &pk,
                        sent_sk(c.kind, c.record_id),
                        &Sent {
                            digest: c.digest.clone(),
                        },
                    ))
                })
                .collect();
            ops.push(WriteOp::Delete {
                pk: pk.clone(),
                sk: pending_sk(),
            });
            ctx.store.batch_write(ops).await?;
            report.sent += batch.len() as u64;
            report.count("deliveries", 1);
            for c in &batch {
                report.count(c.kind.name(), 1);
            }
        }
        Ok(report)
    }

    async fn health(&self, ctx: &DestinationContext) -> Result<DestinationHealth, PluginError> {
        Ok(match self.settings.target {
            TargetKind::Webhook => {
                let checked = match self.webhook_credential(ctx).await {
                    Ok(cred) => self
                        .url_policy()
                        .check(secrecy::ExposeSecret::expose_secret(&cred.url))
                        .await
                        .map(|u| u.url.host_str().unwrap_or("").to_string())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match checked {
                    Ok(host) => DestinationHealth::healthy(format!(
                        "webhook to {host}: URL and signing secret configured"
                    )),
                    Err(e) => DestinationHealth::unhealthy(format!("webhook: {e}")),
                }
            }
            TargetKind::Eventbridge => DestinationHealth::healthy(format!(
                "EventBridge bus {} (checked on the first PutEvents)",
                self.settings.bus()
            )),
        })
    }

    async fn shutdown(&mut self) -> Result<(), PluginError> {
        self.sink = None;
        Ok(())
    }
}
