//! Alerting: the rules look at a health report (domain/alerts.rs decides), this module keeps
//! each alert's state, silences and history in the store (partition `ALERTS`) and sends the
//! notifications through the `Notifier` port, grouped per organization.
//!
//! Order per evaluation: decide every step, notify, then save the states. Message ids are
//! stable per step, and the notifier never delivers the same id twice on a channel, so an
//! evaluation that dies after notifying and runs again does not announce twice as long as
//! its states are unchanged; one that dies before notifying simply notifies next time.

use super::{Datastore, EngineError};
use crate::channels::{load_channel, ChannelError};
use crate::domain::alerts::{
    fingerprint, group, observe, AlertState, AlertStatus, GroupKey, Rule, Silence, Step, Transition,
};
use crate::domain::health::HealthReport;
use crate::domain::template::AlertRouting;
use crate::ports::store::{Condition, Item, SkRange, WriteOp};
use crate::ports::{Event, Message, MessageKind, Notifier};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::domain::keys::ALERTS_PK;
use crate::domain::keys::{
    alert_history_from, alert_history_sk, alert_state_sk as state_sk, prefix_end, silence_sk,
    ALERT_HISTORY_PREFIX, ALERT_STATE_PREFIX, SILENCE_PREFIX,
};
const HISTORY_RETENTION_SECS: i64 = 90 * 24 * 3600;

/// One line of alert history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub at: i64,
    pub fingerprint: String,
    pub rule: String,
    pub subject: String,
    /// `fire`, `repeat`, `escalate`, `resolve`, `ack`, `silenced`.
    pub what: String,
    pub message_id: Option<String>,
    pub summary: String,
}

/// What one evaluation did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Evaluation {
    pub firing: usize,
    pub transitions: Vec<(String, Transition)>,
    pub messages: Vec<String>,
    /// `CredentialExpiring` events to publish (the caller owns the event bus).
    #[serde(skip)]
    pub events: Vec<Event>,
    /// Deliveries that failed (the notifier retries them later).
    pub failed_deliveries: usize,
}

#[derive(Clone)]
pub struct Alerts {
    pub data: Datastore,
    pub notifier: Arc<dyn Notifier>,
    pub rules: Vec<Rule>,
}

impl Alerts {
    /// Adds each organization's alert routing (set by a template) to the channels of its
    /// alerts' steps. A routed channel that no longer exists is left out (with a warning)
    /// rather than failing the evaluation.
    async fn route(&self, steps: &mut [Step]) -> Result<(), EngineError> {
        let mut routes: BTreeMap<u64, Option<AlertRouting>> = BTreeMap::new();
        for (state, _, channels) in steps.iter_mut() {
            let Some(org) = state.org else { continue };
            if let std::collections::btree_map::Entry::Vacant(slot) = routes.entry(org) {
                let routing = match self.data.alert_routing(org).await? {
                    Some(mut r) => {
                        let mut kept = Vec::new();
                        for c in r.channels {
                            match load_channel(self.data.store.as_ref(), &c).await {
                                Ok(_) => kept.push(c),
                                Err(ChannelError::NotFound(_)) => tracing::warn!(
                                    org, channel = %c,
                                    "alert routing names a channel that does not exist; skipped"
                                ),
                                Err(ChannelError::Store(e)) => return Err(e.into()),
                                Err(e) => return Err(EngineError::Invalid(e.to_string())),
                            }
                        }
                        r.channels = kept;
                        Some(r)
                    }
                    None => None,
                };
                slot.insert(routing);
            }
            if let Some(Some(r)) = routes.get(&org) {
                if r.routes(state.severity) {
                    for c in &r.channels {
                        if !channels.contains(c) {
                            channels.push(c.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub fn new(data: Datastore, notifier: Arc<dyn Notifier>, rules: Vec<Rule>) -> Self {
        Alerts {
            data,
            notifier,
            rules,
        }
    }

    /// Applies every rule to `report`: fires, repeats, escalates and resolves alerts.
    pub async fn evaluate(&self, report: &HealthReport) -> Result<Evaluation, EngineError> {
        let now = self.data.clock.unix();
        let states: BTreeMap<String, AlertState> = self
            .states()
            .await?
            .into_iter()
            .map(|s| (s.fingerprint.clone(), s))
            .collect();
        let silences = self.silences().await?;
        let mut changed: Vec<AlertState> = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        let mut history: Vec<AlertEvent> = Vec::new();
        for obs in observe(&self.rules, report) {
            let Some(rule) = self.rules.iter().find(|r| r.id == obs.rule) else {
                continue;
            };
            let fp = fingerprint(&obs.rule, &obs.subject);
            let prev = states.get(&fp);
            let silenced = silences
                .iter()
                .any(|s| s.matches(&fp, &obs.rule, obs.org, now));
            let (next, t) = crate::domain::alerts::step(prev, &obs, rule, silenced, now);
            let Some(next) = next else { continue };
            if prev != Some(&next) {
                changed.push(next.clone());
            }
            if let Some(t) = t {
                steps.push((next.clone(), t, rule.channels.clone()));
                history.push(AlertEvent {
                    at: now,
                    fingerprint: fp.clone(),
                    rule: next.rule.clone(),
                    subject: next.subject.clone(),
                    what: format!("{t:?}").to_lowercase(),
                    message_id: Some(next.message_id(t)),
                    summary: next.summary.clone(),
                });
            } else if silenced && obs.firing && prev.is_none_or(|p| p.status != AlertStatus::Firing)
            {
                history.push(AlertEvent {
                    at: now,
                    fingerprint: fp.clone(),
                    rule: next.rule.clone(),
                    subject: next.subject.clone(),
                    what: "silenced".into(),
                    message_id: None,
                    summary: next.summary.clone(),
                });
            }
        }
        self.route(&mut steps).await?;
        let mut eval = Evaluation::default();
        for (key, members) in group(&steps) {
            let message = render(&key, &members);
            let reports = self
                .notifier
                .notify(&message, &key.2)
                .await
                .map_err(|e| match e {
                    crate::ports::NotifyError::UnknownChannel(name) => EngineError::Invalid(format!(
                        "alert notification: no channel {name:?} is configured (add it with \
                         `classy-sync notify channel add {name} <kind>`, or change the rule's channels)"
                    )),
                    e => EngineError::Invalid(format!("alert notification: {e}")),
                })?;
            eval.failed_deliveries += reports
                .iter()
                .filter(|r| r.status == crate::ports::DeliveryStatus::Failed)
                .count();
            eval.messages.push(message.id.clone());
        }
        for (s, t, _) in &steps {
            eval.transitions.push((s.fingerprint.clone(), *t));
            if s.rule_kind_is_credential(&self.rules)
                && matches!(t, Transition::Fire | Transition::Escalate)
            {
                eval.events.push(credential_event(s, self.data.clock.now()));
            }
        }
        let mut ops: Vec<WriteOp> = changed
            .iter()
            .map(|s| {
                let item = Item::json(ALERTS_PK, state_sk(&s.fingerprint), s);
                // A resolved alert is kept as long as its history, then forgotten.
                WriteOp::Put(match s.status {
                    AlertStatus::Resolved => item.with_expiry(now + HISTORY_RETENTION_SECS),
                    AlertStatus::Firing => item,
                })
            })
            .collect();
        ops.extend(history.iter().map(|h| history_put(h, now)));
        for chunk in ops.chunks(25) {
            self.data.store.batch_write(chunk.to_vec()).await?;
        }
        eval.firing = states
            .values()
            .filter(|s| !changed.iter().any(|c| c.fingerprint == s.fingerprint))
            .chain(changed.iter())
            .filter(|s| s.status == AlertStatus::Firing)
            .count();
        Ok(eval)
    }

    /// Every stored alert (firing and resolved).
    pub async fn states(&self) -> Result<Vec<AlertState>, EngineError> {
        self.query_all(ALERT_STATE_PREFIX).await
    }

    pub async fn silences(&self) -> Result<Vec<Silence>, EngineError> {
        let now = self.data.clock.unix();
        Ok(self
            .query_all::<Silence>(SILENCE_PREFIX)
            .await?
            .into_iter()
            .filter(|s| s.until > now)
            .collect())
    }

    /// Alert history, newest first, at most `limit`, no older than 90 days. Reads a week
    /// back, then a wider window, so a short listing does not read 90 days of items.
    pub async fn history(&self, limit: usize) -> Result<Vec<AlertEvent>, EngineError> {
        let now = self.data.clock.unix();
        let mut days = 7;
        loop {
            let since = now - (days * 86_400).min(HISTORY_RETENTION_SECS);
            let mut all: Vec<AlertEvent> = crate::ports::store::parse_all(
                self.data.store.as_ref(),
                ALERTS_PK,
                &SkRange::Between(alert_history_from(since), prefix_end(ALERT_HISTORY_PREFIX)),
                500,
            )
            .await?;
            if all.len() >= limit || days * 86_400 >= HISTORY_RETENTION_SECS {
                all.reverse();
                all.truncate(limit);
                return Ok(all);
            }
            days *= 4;
        }
    }

    /// Acknowledges a firing alert by fingerprint (or unique prefix): no more repeats.
    pub async fn ack(&self, fp_prefix: &str, by: &str) -> Result<AlertState, EngineError> {
        let mut s = self.find(fp_prefix).await?;
        if s.status != AlertStatus::Firing {
            return Err(EngineError::Invalid(format!(
                "alert {} is not firing",
                s.fingerprint
            )));
        }
        let now = self.data.clock.unix();
        s.acked_at = Some(now);
        s.acked_by = Some(by.to_string());
        let h = AlertEvent {
            at: now,
            fingerprint: s.fingerprint.clone(),
            rule: s.rule.clone(),
            subject: s.subject.clone(),
            what: "ack".into(),
            message_id: None,
            summary: format!("acknowledged by {by}"),
        };
        self.data
            .store
            .batch_write(vec![
                WriteOp::Put(Item::json(ALERTS_PK, state_sk(&s.fingerprint), &s)),
                history_put(&h, now),
            ])
            .await?;
        Ok(s)
    }

    /// Silences alerts matching `matcher` (fingerprint, rule id, or `org <id>`) for `secs`.
    pub async fn silence(
        &self,
        matcher: &str,
        secs: u64,
        reason: Option<String>,
    ) -> Result<Silence, EngineError> {
        let matcher = matcher.trim();
        if matcher.is_empty() {
            return Err(EngineError::Invalid(
                "the silence matcher must not be empty".into(),
            ));
        }
        if secs == 0 {
            return Err(EngineError::Invalid("--for must be longer than 0".into()));
        }
        let known_rule = self.rules.iter().any(|r| r.id == matcher);
        let org_matcher = matcher
            .strip_prefix("org ")
            .is_some_and(|o| o.parse::<u64>().is_ok());
        let matcher = if known_rule || org_matcher {
            matcher.to_string()
        } else {
            self.find(matcher).await?.fingerprint
        };
        let now = self.data.clock.unix();
        let s = Silence {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            matcher,
            until: now + secs as i64,
            created_at: now,
            reason,
        };
        self.data
            .store
            .put(
                Item::json(ALERTS_PK, silence_sk(&s.id), &s).with_expiry(s.until),
                Condition::Always,
            )
            .await?;
        Ok(s)
    }

    async fn find(&self, fp_prefix: &str) -> Result<AlertState, EngineError> {
        let fp_prefix = fp_prefix.trim();
        if fp_prefix.len() < 4 {
            return Err(EngineError::Invalid(
                "give at least 4 characters of the alert id".into(),
            ));
        }
        let mut hits: Vec<AlertState> = self
            .states()
            .await?
            .into_iter()
            .filter(|s| s.fingerprint.starts_with(fp_prefix))
            .collect();
        match hits.len() {
            1 => Ok(hits.remove(0)),
            0 => Err(EngineError::Invalid(format!(
                "no alert {fp_prefix:?} (see `classy-sync alerts list`)"
            ))),
            n => Err(EngineError::Invalid(format!(
                "{n} alerts start with {fp_prefix:?}; give more characters"
            ))),
        }
    }

    async fn query_all<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<T>, EngineError> {
        Ok(crate::ports::store::parse_all(
            self.data.store.as_ref(),
            ALERTS_PK,
            &SkRange::prefix(prefix),
            500,
        )
        .await?)
    }
}

impl AlertState {
    fn rule_kind_is_credential(&self, rules: &[Rule]) -> bool {
        rules.iter().any(|r| {
            r.id == self.rule && r.kind == crate::domain::alerts::RuleKind::CredentialExpiry
        })
    }
}

fn history_put(h: &AlertEvent, now: i64) -> WriteOp {
    let sk = alert_history_sk(
        h.at,
        &h.fingerprint,
        h.message_id.as_deref().unwrap_or(&h.what),
    );
    WriteOp::Put(Item::json(ALERTS_PK, sk, h).with_expiry(now + HISTORY_RETENTION_SECS))
}

/// One message for a group of steps of one organization.
fn render(key: &GroupKey, members: &[&Step]) -> Message {
    let (org, resolved, _) = key;
    let ids: Vec<String> = members.iter().map(|(s, t, _)| s.message_id(*t)).collect();
    let id = if ids.len() == 1 {
        ids[0].clone()
    } else {
        let mut h = Sha256::new();
        for i in &ids {
            h.update(i.as_bytes());
            h.update([0]);
        }
        format!("alerts:{}", hex::encode(&h.finalize()[..12]))
    };
    let severity = members
        .iter()
        .map(|(s, _, _)| s.severity)
        .min()
        .unwrap_or(crate::ports::Severity::Info);
    let scope = match org {
        Some(o) => format!("organization {o}"),
        None => "classy-sync".to_string(),
    };
    let subject = match (members.len(), resolved) {
        (1, false) => format!(
            "[{}] {}: {}",
            severity.as_str().to_uppercase(),
            members[0].0.rule,
            members[0].0.subject
        ),
        (1, true) => format!("[RESOLVED] {}: {}", members[0].0.rule, members[0].0.subject),
        (n, false) => format!(
            "[{}] {scope}: {n} alerts firing",
            severity.as_str().to_uppercase()
        ),
        (n, true) => format!("[RESOLVED] {scope}: {n} alerts resolved"),
    };
    let mut text = String::new();
    for (s, t, _) in members {
        let what = match t {
            Transition::Fire => "FIRING",
            Transition::Repeat => "STILL FIRING",
            Transition::Escalate => "ESCALATED",
            Transition::Resolve => "RESOLVED",
        };
        text.push_str(&format!(
            "{what} [{}] {} — {} (alert {})\n",
            s.severity.as_str(),
            s.rule,
            s.summary,
            &s.fingerprint
        ));
    }
    let mut fields = vec![("scope".to_string(), scope)];
    if members.len() == 1 {
        fields.extend(members[0].0.fields.iter().cloned());
        if let Some(stage) = &members[0].0.stage {
            fields.push(("stage".into(), stage.clone()));
        }
    }
    fields.push(("alerts".into(), members.len().to_string()));
    Message {
        id,
        kind: if *resolved {
            MessageKind::AlertResolved
        } else {
            MessageKind::AlertFiring
        },
        severity,
        org_id: org.map(|o| o.to_string()),
        subject,
        text,
        fields,
        html: None,
        slack_blocks: None,
    }
}

/// `CredentialExpiring`, once per stage (30d, 7d, 1d, expired).
fn credential_event(s: &AlertState, now: chrono::DateTime<chrono::Utc>) -> Event {
    Event {
        detail_type: "CredentialExpiring".into(),
        detail: json!({
            "version": 1,
            "organization_id": s.org,
            "credential": "classy",
            "stage": s.stage,
            "alert": s.fingerprint,
            "summary": s.summary,
        }),
        time: now,
    }
}

/// `HealthChanged`, on transitions of the overall status only.
pub fn health_changed_event(
    previous: Option<crate::domain::health::HealthStatus>,
    report: &HealthReport,
    now: chrono::DateTime<chrono::Utc>,
) -> Event {
    let problems: Vec<_> = report
        .results()
        .filter(|r| r.status != crate::domain::health::HealthStatus::Pass)
        .take(20)
        .map(|r| json!({"check": r.key, "component_id": r.component_id, "status": r.status, "output": r.output}))
        .collect();
    Event {
        detail_type: "HealthChanged".into(),
        detail: json!({
            "version": 1,
            "previous": previous,
            "status": report.status,
            "time": report.time,
            "problems": problems,
        }),
        time: now,
    }
}
