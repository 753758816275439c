//! Scheduled reports against the ports: definitions in the store (`REPORTS` / `REPORT#<id>`),
//! building one report from analytics summaries, sending it through the [`Notifier`], and the
//! due-check with a sent-marker per report × scheduled occurrence (`SENT#<id>#<unix>`), so a
//! run that happens twice, or dies after sending, sends each occurrence once.

use super::{Datastore, EngineError};
use crate::channels::{self as channel, ChannelConfig, ChannelError, ChannelKind, ChannelSecrets};
use crate::domain::analytics::{OrgSummary, Period};
use crate::domain::report::{self, ReportDefinition, ReportScope, ReportView};
use crate::domain::{OrgId, Timestamp};
use crate::ports::{
    Condition, DeliveryReport, DeliveryStatus, Item, Message, MessageKind, Notifier, SecretStore,
    Severity, SkRange, StoreError,
};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;

pub use crate::domain::keys::REPORTS_PK;
use crate::domain::keys::{
    report_def_sk as def_sk, report_sent_sk as sent_sk, REPORT_DEF_PREFIX as DEF_PREFIX,
};
/// A missed occurrence older than this is not sent late (the next one will be).
pub const CATCH_UP_SECS: i64 = 36 * 3600;

fn channel_err(e: ChannelError) -> EngineError {
    match e {
        ChannelError::Store(s) => EngineError::Store(s),
        ChannelError::Secret(s) => EngineError::Secret(s),
        other => EngineError::Invalid(other.to_string()),
    }
}

/// Report definitions: stored in the store; one with email recipients owns an email
/// notification channel (kept with the channels, whose secrets live in the secret store).
#[derive(Clone)]
pub struct ReportDefinitions {
    pub data: Datastore,
    pub secrets: Arc<dyn SecretStore>,
}

impl ReportDefinitions {
    pub fn new(data: Datastore, secrets: Arc<dyn SecretStore>) -> Self {
        ReportDefinitions { data, secrets }
    }

    /// Saves a new definition (refused if the id exists) and, when it has email recipients, the
    /// email notification channel it owns.
    pub async fn add(&self, def: &ReportDefinition) -> Result<(), EngineError> {
        def.validate()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if let ReportScope::Org(id) = def.scope {
            self.data.get_org(id).await?;
        }
        for name in &def.recipients.slack_channels {
            let c = channel::load_channel(self.data.store.as_ref(), name)
                .await
                .map_err(channel_err)?;
            if c.kind != ChannelKind::Slack {
                return Err(EngineError::Invalid(format!(
                    "recipients.slack_channels: channel {name:?} is a {} channel, not slack",
                    c.kind.as_str()
                )));
            }
        }
        if self
            .data
            .store
            .get(REPORTS_PK, &def_sk(&def.id))
            .await?
            .is_some()
        {
            return Err(EngineError::Invalid(format!(
                "report {:?} already exists",
                def.id
            )));
        }
        if let Some(name) = def.email_channel() {
            let cfg = ChannelConfig {
                name: name.clone(),
                kind: ChannelKind::Email,
                to: def.recipients.emails.clone(),
                allow_http_loopback: false,
            };
            // Left over from a removal that died halfway: replace it.
            match channel::remove_channel(self.data.store.as_ref(), self.secrets.as_ref(), &name)
                .await
            {
                Ok(()) | Err(ChannelError::NotFound(_)) => {}
                Err(e) => return Err(channel_err(e)),
            }
            channel::add_channel(
                self.data.store.as_ref(),
                self.secrets.as_ref(),
                &cfg,
                &ChannelSecrets::default(),
            )
            .await
            .map_err(channel_err)?;
        }
        let item = Item::json(REPORTS_PK, def_sk(&def.id), def);
        match self.data.store.put(item, Condition::NotExists).await {
            Err(e) if e.is_condition_failed() => Err(EngineError::Invalid(format!(
                "report {:?} already exists",
                def.id
            ))),
            other => Ok(other?),
        }
    }

    pub async fn load(&self, id: &str) -> Result<ReportDefinition, EngineError> {
        self.data
            .store
            .get(REPORTS_PK, &def_sk(id))
            .await?
            .ok_or_else(|| EngineError::Invalid(format!("report {id:?} not found")))?
            .parse()
            .map_err(EngineError::from)
    }

    pub async fn list(&self) -> Result<Vec<ReportDefinition>, EngineError> {
        list_definitions(&self.data).await
    }

    /// Removes a definition and its email channel (sent-markers stay: they are small and keep a
    /// re-added report with the same id from re-sending an occurrence).
    pub async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let def = self.load(id).await?;
        if let Some(name) = def.email_channel() {
            match channel::remove_channel(self.data.store.as_ref(), self.secrets.as_ref(), &name)
                .await
            {
                Ok(()) | Err(ChannelError::NotFound(_)) => {}
                Err(e) => return Err(channel_err(e)),
            }
        }
        self.data
            .store
            .delete(REPORTS_PK, &def_sk(id), Condition::Always)
            .await?;
        Ok(())
    }
}

/// A report rendered three ways.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderedReport {
    pub title: String,
    pub html: String,
    pub text: String,
    pub slack_blocks: serde_json::Value,
}

pub fn title_for(def_id: Option<&str>, summaries: &[OrgSummary]) -> String {
    let who = match summaries {
        [one] => one.org_name.clone(),
        many => format!("{} organizations", many.len()),
    };
    let period = summaries
        .first()
        .map(|s| s.period.label.clone())
        .unwrap_or_default();
    match def_id {
        Some(id) => format!("Fundraising report {id}: {who}, {period}"),
        None => format!("Fundraising report: {who}, {period}"),
    }
}

pub fn render(
    title: String,
    sections: &[report::Section],
    summaries: &[OrgSummary],
    now: i64,
) -> RenderedReport {
    let view = ReportView {
        title: title.clone(),
        sections,
        summaries,
        generated_at: now,
    };
    RenderedReport {
        html: report::html::render(&view),
        text: report::text::render(&view),
        slack_blocks: report::slack::render(&view),
        title,
    }
}

/// The notification message of a rendered report.
pub fn message(id: String, def: &ReportDefinition, r: &RenderedReport) -> Message {
    Message {
        id,
        kind: MessageKind::Report,
        severity: Severity::Info,
        org_id: match def.scope {
            ReportScope::Org(o) => Some(o.to_string()),
            ReportScope::All => None,
        },
        subject: r.title.clone(),
        text: r.text.clone(),
        fields: Vec::new(),
        html: Some(r.html.clone()),
        slack_blocks: Some(r.slack_blocks.clone()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentMarker {
    pub report_id: String,
    pub occurrence: i64,
    pub sent_at: i64,
    pub deliveries: Vec<DeliveryReport>,
}

/// What one due-check did for one definition.
#[derive(Debug, Clone)]
pub struct DueOutcome {
    pub report_id: String,
    pub occurrence: i64,
    pub deliveries: Vec<DeliveryReport>,
}

/// The summaries a report over `scope` covers, as of `now` (previews need no notifier).
pub async fn summaries(
    data: &Datastore,
    scope: ReportScope,
    period: &str,
    now: Timestamp,
) -> Result<Vec<OrgSummary>, EngineError> {
    let period = Period::from_str(period).map_err(|e| EngineError::Invalid(e.to_string()))?;
    let orgs: Vec<OrgId> = match scope {
        ReportScope::Org(id) => vec![id],
        ReportScope::All => data.list_orgs().await?.into_iter().map(|o| o.id).collect(),
    };
    let mut out = Vec::with_capacity(orgs.len());
    for org in orgs {
        out.push(data.summarize(org, &period, now).await?);
    }
    Ok(out)
}

/// Builds reports from the analytics and sends them through the notifier; needs no Classy.
#[derive(Clone)]
pub struct ReportService {
    pub data: Datastore,
    pub notifier: Arc<dyn Notifier>,
}

impl ReportService {
    pub fn new(data: Datastore, notifier: Arc<dyn Notifier>) -> Self {
        ReportService { data, notifier }
    }

    /// Builds and sends `def` as of `now` under message id `message_id` (the notifier never
    /// delivers one id twice to a channel).
    pub async fn send_report(
        &self,
        def: &ReportDefinition,
        message_id: String,
        now: Timestamp,
    ) -> Result<Vec<DeliveryReport>, EngineError> {
        let sums = summaries(&self.data, def.scope, &def.period, now).await?;
        let rendered = render(
            title_for(Some(&def.id), &sums),
            &def.sections,
            &sums,
            now.unix(),
        );
        let m = message(message_id, def, &rendered);
        self.notifier
            .notify(&m, &def.channels())
            .await
            .map_err(|e| EngineError::Invalid(e.to_string()))
    }

    /// Sends every report whose latest occurrence (within [`CATCH_UP_SECS`]) has no sent-marker.
    /// Failed deliveries are left to the notifier's retries; the marker is written once the
    /// notifier has recorded every delivery, so the report is rendered once per occurrence.
    pub async fn send_due(&self, only: Option<&str>) -> Result<Vec<DueOutcome>, EngineError> {
        let now = Timestamp(self.data.clock.now());
        let mut out = Vec::new();
        for def in list_definitions(&self.data).await? {
            if only.is_some_and(|id| id != def.id) {
                continue;
            }
            let occurrence = match def.due_occurrence(now.unix(), CATCH_UP_SECS) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(report = %def.id, error = %e, "report definition is invalid; skipped");
                    continue;
                }
            };
            let sk = sent_sk(&def.id, occurrence);
            if self.data.store.get(REPORTS_PK, &sk).await?.is_some() {
                continue;
            }
            let id = format!("report:{}:{occurrence}", def.id);
            let deliveries = self.send_report(&def, id, now).await?;
            let marker = SentMarker {
                report_id: def.id.clone(),
                occurrence,
                sent_at: now.unix(),
                deliveries: deliveries.clone(),
            };
            match self
                .data
                .store
                .put(Item::json(REPORTS_PK, sk, &marker), Condition::NotExists)
                .await
            {
                Ok(()) => {}
                // A concurrent run wrote it: the notifier's records kept the sends single.
                Err(e) if e.is_condition_failed() => {}
                Err(e) => return Err(e.into()),
            }
            let failed = deliveries
                .iter()
                .filter(|d| d.status != DeliveryStatus::Sent)
                .count();
            tracing::info!(report = %def.id, occurrence, channels = deliveries.len(), failed, "report sent");
            out.push(DueOutcome {
                report_id: def.id,
                occurrence,
                deliveries,
            });
        }
        Ok(out)
    }

    /// Whether the occurrence's marker exists (tests, status).
    pub async fn was_sent(&self, id: &str, occurrence: i64) -> Result<bool, StoreError> {
        Ok(self
            .data
            .store
            .get(REPORTS_PK, &sent_sk(id, occurrence))
            .await?
            .is_some())
    }
}

/// Every stored definition.
async fn list_definitions(data: &Datastore) -> Result<Vec<ReportDefinition>, EngineError> {
    Ok(crate::ports::store::parse_all(
        data.store.as_ref(),
        REPORTS_PK,
        &SkRange::prefix(DEF_PREFIX),
        200,
    )
    .await?)
}
