//! Scheduled reports against the ports: definitions in the store (`REPORTS` / `REPORT#<id>`),
//! building one report from analytics summaries, sending it through the [`Notifier`], and the
//! due-check with a sent-marker per report × scheduled occurrence (`SENT#<id>#<unix>`), so a
//! run that happens twice, or dies after sending, sends each occurrence once. The marker is
//! written once every delivery is final; until then each run retries the deliveries that are
//! due, rebuilding the report as of its first attempt (the notifier's delivery records keep a
//! digest and a bounded stand-in of a large message, never the whole report).

use super::{Datastore, EngineError};
use crate::channels::{self as channel, ChannelConfig, ChannelError, ChannelKind, ChannelSecrets};
use crate::domain::analytics::fep::{FepOptions, FepReport};
use crate::domain::analytics::{OrgSummary, Period};
use crate::domain::report::{self, ReportDefinition, ReportScope, ReportView};
use crate::domain::usage::Operation;
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
        .map(|s| report::format::period_words(&s.period.label).to_lowercase())
        .unwrap_or_default();
    match def_id {
        Some(id) => format!("Fundraising report {id}: {who}, {period}"),
        None => format!("Fundraising report: {who}, {period}"),
    }
}

/// Renders a report; `fep` holds the FEP figures of the organizations when the `fep` section
/// is shown ([`fep_reports`]).
pub fn render(
    title: String,
    sections: &[report::Section],
    summaries: &[OrgSummary],
    fep: &[FepReport],
    now: i64,
) -> RenderedReport {
    let view = ReportView {
        title: title.clone(),
        sections,
        summaries,
        fep,
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
    /// Every delivery is final (sent, or given up on): the sent-marker is written. Otherwise
    /// a later run retries the deliveries that failed.
    pub complete: bool,
    /// Why this definition could not be built or handed over (the others went on).
    pub error: Option<String>,
}

impl DueOutcome {
    /// Deliveries that are not sent (failed, or waiting for a retry).
    pub fn unsent(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| d.status != DeliveryStatus::Sent)
            .count()
    }
}

/// What [`ReportService::scheduled_round`] did.
#[derive(Debug)]
pub struct ScheduledRound {
    pub reports: Result<Vec<DueOutcome>, EngineError>,
    pub retried: Result<Vec<DeliveryReport>, crate::ports::NotifyError>,
}

/// The summaries a report over `scope` covers, as of `now` (previews need no notifier).
pub async fn summaries(
    data: &Datastore,
    scope: ReportScope,
    period: &str,
    now: Timestamp,
) -> Result<Vec<OrgSummary>, EngineError> {
    let orgs = scope_orgs(data, scope).await?;
    summaries_of(data, &orgs, period, now).await
}

/// The period of the `fep` section, whatever the report's own: FEP retention compares a year
/// with the year before (the last 12 months with the 12 before).
pub const FEP_PERIOD: &str = "12m";

/// The FEP figures of each organization of `summaries` as of `now` over [`FEP_PERIOD`], when
/// `sections` shows them (otherwise none: the pass reads every gift of the organization).
pub async fn fep_reports(
    data: &Datastore,
    sections: &[report::Section],
    summaries: &[OrgSummary],
    now: Timestamp,
) -> Result<Vec<FepReport>, EngineError> {
    if !sections.contains(&report::Section::Fep) {
        return Ok(Vec::new());
    }
    let period = Period::from_str(FEP_PERIOD).map_err(|e| EngineError::Invalid(e.to_string()))?;
    // Counts and dollars only: the report lists no LYBUNT/SYBUNT donor by name.
    let options = FepOptions {
        limit: 0,
        ..FepOptions::default()
    };
    let mut out = Vec::with_capacity(summaries.len());
    for s in summaries {
        out.push(data.fep_report(s.org_id, &period, now, &options).await?);
    }
    Ok(out)
}

/// The organizations a report over `scope` covers.
async fn scope_orgs(data: &Datastore, scope: ReportScope) -> Result<Vec<OrgId>, EngineError> {
    Ok(match scope {
        ReportScope::Org(id) => vec![id],
        ReportScope::All => data.list_orgs().await?.into_iter().map(|o| o.id).collect(),
    })
}

async fn summaries_of(
    data: &Datastore,
    orgs: &[OrgId],
    period: &str,
    now: Timestamp,
) -> Result<Vec<OrgSummary>, EngineError> {
    let period = Period::from_str(period).map_err(|e| EngineError::Invalid(e.to_string()))?;
    let mut out = Vec::with_capacity(orgs.len());
    for &org in orgs {
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
        let started_at_ms = self.data.clock.now().timestamp_millis();
        let t0 = std::time::Instant::now();
        let orgs = scope_orgs(&self.data, def.scope).await?;
        let result = async {
            let sums = summaries_of(&self.data, &orgs, &def.period, now).await?;
            let fep = fep_reports(&self.data, &def.sections, &sums, now).await?;
            let rendered = render(
                title_for(Some(&def.id), &sums),
                &def.sections,
                &sums,
                &fep,
                now.unix(),
            );
            let m = message(message_id, def, &rendered);
            self.notifier
                .notify(&m, &def.channels())
                .await
                .map_err(|e| EngineError::Invalid(e.to_string()))
        }
        .await;
        // Usage analytics: one operation record per organization the report covers (a
        // report over every organization is recorded once in each). Reports read the store
        // only: no Classy or Mailchimp call.
        let error = match &result {
            Ok(d) => {
                let unsent = d
                    .iter()
                    .filter(|d| d.status != DeliveryStatus::Sent)
                    .count();
                (unsent > 0).then(|| format!("{unsent} of {} deliveries not sent", d.len()))
            }
            Err(e) => Some(e.to_string()),
        };
        // No record in the partition of an organization that is gone.
        let gone = matches!(&result, Err(EngineError::UnknownOrg(_)));
        for org in orgs.into_iter().filter(|_| !gone) {
            let mut op = self
                .data
                .new_op(org, Operation::Report, def.id.clone(), started_at_ms);
            op.duration_ms = t0.elapsed().as_millis() as u64;
            op.classy_calls = Some(0);
            op.mailchimp_calls = Some(0);
            op.error = error.clone();
            self.data.record_op_logged(&op).await;
        }
        result
    }

    /// Sends every report whose latest occurrence (within [`CATCH_UP_SECS`]) has no
    /// sent-marker, and retries the failed deliveries of those already tried: the report is
    /// rebuilt as of its first attempt when one of its deliveries is due again (delivery
    /// records keep a digest, not the report). The marker is written only once every delivery
    /// is final (sent, or given up on by the notifier's ladder). A definition that fails (an
    /// organization that cannot be read, a store error) is reported in its outcome and does not
    /// stop the others.
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
            match self.send_occurrence(&def, occurrence, now).await {
                Ok(Some(o)) => {
                    tracing::info!(report = %def.id, occurrence, channels = o.deliveries.len(),
                        unsent = o.unsent(), complete = o.complete, "report run");
                    out.push(o);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(report = %def.id, occurrence, error = %e,
                        "report failed; the other reports go on");
                    out.push(DueOutcome {
                        report_id: def.id.clone(),
                        occurrence,
                        deliveries: Vec::new(),
                        complete: false,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// One round of the local run loop (`classy-sync run`, every tick): the due reports are
    /// sent and their failed deliveries retried ([`ReportService::send_due`]), then every other
    /// delivery that is due again (alerts) is retried by the notifier.
    pub async fn scheduled_round(&self) -> ScheduledRound {
        let reports = self.send_due(None).await;
        let retried = self.notifier.retry_due(false).await;
        ScheduledRound { reports, retried }
    }

    /// One occurrence of one definition: `None` when nothing is owed now (sent, or every
    /// failed delivery waits for its next attempt).
    async fn send_occurrence(
        &self,
        def: &ReportDefinition,
        occurrence: i64,
        now: Timestamp,
    ) -> Result<Option<DueOutcome>, EngineError> {
        let sk = sent_sk(&def.id, occurrence);
        if self.data.store.get(REPORTS_PK, &sk).await?.is_some() {
            return Ok(None);
        }
        let id = format!("report:{}:{occurrence}", def.id);
        let channels = def.channels();
        let known = self
            .notifier
            .deliveries(&id, &channels)
            .await
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let all_final = known
            .iter()
            .all(|k| k.as_ref().is_some_and(|d| d.is_final()));
        let waiting = known
            .iter()
            .all(|k| k.as_ref().is_some_and(|d| !d.is_due(now.unix())));
        let deliveries = if all_final {
            // Finished by an earlier run or by the notifier's own retries: only the marker.
            known.into_iter().flatten().collect()
        } else if waiting {
            return Ok(None);
        } else {
            // The same figures as the first attempt: rebuilt as of when it was made.
            let as_of = known
                .iter()
                .flatten()
                .filter_map(|d| d.first_attempt_at)
                .min()
                .map_or(now, Timestamp::from_unix);
            self.send_report(def, id, as_of).await?
        };
        let complete = deliveries.iter().all(|d| d.is_final());
        if complete {
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
        }
        Ok(Some(DueOutcome {
            report_id: def.id.clone(),
            occurrence,
            deliveries,
            complete,
            error: None,
        }))
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
