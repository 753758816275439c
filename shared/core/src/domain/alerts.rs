//! Alerting as pure functions: rules with defaults, what each rule sees in a health report
//! (observations), fingerprints, and the per-alert state machine (fire once, repeat after a
//! cooldown unless acknowledged, escalate when a stage changes, resolve once) as a function of
//! (state, observation, rule, silenced, now). No I/O: the engine stores and sends.

use super::health::{CheckResult, HealthReport, HealthStatus};
use super::severity::Severity;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A critical component (store, queue, secret store) fails.
    CriticalComponent,
    /// An organization×entity failed `max_consecutive_failures` times in a row (and is
    /// therefore disabled).
    FailureStreak,
    /// Dead letters are present.
    DeadLetters,
    /// Data of an organization×entity is stale without a failure streak explaining it.
    DataStale,
    /// A credential expires within 30, 7 or 1 days, or has expired.
    CredentialExpiry,
    /// Too many of the last hour's runs failed.
    ErrorRate,
    /// Destinations refused many records for compliance reasons in the last hour.
    ComplianceSpike,
    /// A destination does not answer or refuses its target (a Mailchimp list, a bus).
    DestinationDown,
    /// Records of an organization×entity do not decode and are held in quarantine.
    QuarantinedRecords,
}

impl RuleKind {
    /// The health check key this rule reads.
    pub fn check_key(self) -> &'static str {
        match self {
            RuleKind::CriticalComponent => "",
            RuleKind::FailureStreak => "sync:failureStreak",
            RuleKind::DeadLetters => "queue:deadLetters",
            RuleKind::DataStale => "sync:freshness",
            RuleKind::CredentialExpiry => "credential:expiry",
            RuleKind::ErrorRate => "sync:errorRate",
            RuleKind::ComplianceSpike => "destination:complianceErrors",
            RuleKind::DestinationDown => "destination:reachable",
            RuleKind::QuarantinedRecords => "sync:quarantinedRecords",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    pub severity: Severity,
    /// Notification channel names (configured in the notification service).
    pub channels: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// While still firing and not acknowledged, notify again after this long (0: never).
    pub repeat_secs: u64,
}

fn yes() -> bool {
    true
}

/// The channel every default rule notifies.
pub const DEFAULT_CHANNEL: &str = "ops";

/// The rules used when none are configured.
pub fn default_rules() -> Vec<Rule> {
    let r = |id: &str, kind, severity, repeat_h: u64| Rule {
        id: id.to_string(),
        kind,
        severity,
        channels: vec![DEFAULT_CHANNEL.to_string()],
        enabled: true,
        repeat_secs: repeat_h * 3600,
    };
    vec![
        r(
            "critical-component",
            RuleKind::CriticalComponent,
            Severity::Critical,
            1,
        ),
        r(
            "failure-streak",
            RuleKind::FailureStreak,
            Severity::High,
            24,
        ),
        r("dead-letters", RuleKind::DeadLetters, Severity::High, 12),
        r("data-stale", RuleKind::DataStale, Severity::Medium, 24),
        // Each stage (30, 7, 1 days, expired) is announced once: no repeats in between.
        r(
            "credential-expiry",
            RuleKind::CredentialExpiry,
            Severity::High,
            0,
        ),
        r("error-rate", RuleKind::ErrorRate, Severity::High, 4),
        r(
            "compliance-spike",
            RuleKind::ComplianceSpike,
            Severity::Medium,
            24,
        ),
        r(
            "destination-down",
            RuleKind::DestinationDown,
            Severity::High,
            4,
        ),
        // Announced once per episode: the records stay held until Classy sends versions
        // that decode, and repeating would only repeat the list.
        r(
            "quarantined-records",
            RuleKind::QuarantinedRecords,
            Severity::Medium,
            0,
        ),
    ]
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuleError {
    #[error("alert rules: {0}")]
    Parse(String),
    #[error("alert rule {index}: {message}")]
    Invalid { index: usize, message: String },
}

/// Parses a JSON array of rules, naming the rule that is wrong.
pub fn parse_rules(json: &str) -> Result<Vec<Rule>, RuleError> {
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| RuleError::Parse(e.to_string()))?;
    let mut out: Vec<Rule> = Vec::new();
    for (index, v) in raw.into_iter().enumerate() {
        let rule: Rule = serde_json::from_value(v).map_err(|e| RuleError::Invalid {
            index,
            message: e.to_string(),
        })?;
        let bad = |m: &str| RuleError::Invalid {
            index,
            message: format!("{}: {m}", rule.id),
        };
        if rule.id.trim().is_empty() {
            return Err(bad("id must not be empty"));
        }
        if rule.channels.is_empty() {
            return Err(bad("channels must name at least one channel"));
        }
        if out.iter().any(|r| r.id == rule.id) {
            return Err(bad("duplicate id"));
        }
        out.push(rule);
    }
    Ok(out)
}

/// What one rule sees about one subject in one health report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub rule: String,
    /// What it is about: `org 7 supporters`, `queue`, `store:responseTime`.
    pub subject: String,
    pub org: Option<u64>,
    pub firing: bool,
    pub severity: Severity,
    /// Escalation stage (credential expiry: `30d`, `7d`, `1d`, `expired`).
    pub stage: Option<String>,
    pub summary: String,
    pub fields: Vec<(String, String)>,
}

/// Stable identity of an alert: rule and subject.
pub fn fingerprint(rule: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The credential-expiry stage of `days_left`, if any: each is announced once.
pub fn credential_stage(days_left: f64) -> Option<&'static str> {
    if days_left <= 0.0 {
        Some("expired")
    } else if days_left <= 1.0 {
        Some("1d")
    } else if days_left <= 7.0 {
        Some("7d")
    } else if days_left <= 30.0 {
        Some("30d")
    } else {
        None
    }
}

fn stage_severity(stage: &str, base: Severity) -> Severity {
    match stage {
        "expired" | "1d" => Severity::Critical,
        "7d" => base.min(Severity::High),
        _ => base.max(Severity::Medium),
    }
}

fn subject_of(r: &CheckResult) -> String {
    match (r.org, &r.entity, &r.component_id) {
        (Some(o), Some(e), _) => format!("org {o} {e}"),
        (Some(o), None, _) => format!("org {o}"),
        (None, _, Some(id)) => format!("{} {id}", r.key),
        (None, _, None) => r.key.clone(),
    }
}

fn base_fields(r: &CheckResult) -> Vec<(String, String)> {
    let mut f = vec![("check".to_string(), r.key.clone())];
    if let Some(v) = &r.observed_value {
        let unit = r.observed_unit.clone().unwrap_or_default();
        f.push(("observed".into(), format!("{v} {unit}").trim().to_string()));
    }
    if let Some(o) = r.org {
        f.push(("organization".into(), o.to_string()));
    }
    if let Some(e) = &r.entity {
        f.push(("entity".into(), e.clone()));
    }
    f
}

/// Every observation the enabled rules make of a report. A check that did not run (timed
/// out) yields none, so it neither fires nor resolves anything.
pub fn observe(rules: &[Rule], report: &HealthReport) -> Vec<Observation> {
    let results: Vec<CheckResult> = report.results().collect();
    // Pairs with a failure streak: their staleness is explained (and alerted) already.
    let streaking: Vec<(u64, String)> = results
        .iter()
        .filter(|r| r.key == RuleKind::FailureStreak.check_key() && r.status != HealthStatus::Pass)
        .filter_map(|r| Some((r.org?, r.entity.clone()?)))
        .collect();
    let mut out = Vec::new();
    for rule in rules.iter().filter(|r| r.enabled) {
        for r in &results {
            let relevant = match rule.kind {
                RuleKind::CriticalComponent => r.critical,
                k => r.key == k.check_key(),
            };
            if !relevant {
                continue;
            }
            let mut firing = r.status == HealthStatus::Fail;
            let mut severity = rule.severity;
            let mut stage = None;
            match rule.kind {
                RuleKind::DeadLetters
                | RuleKind::DestinationDown
                | RuleKind::QuarantinedRecords => firing = r.status != HealthStatus::Pass,
                RuleKind::DataStale => {
                    let explained = matches!((r.org, &r.entity), (Some(o), Some(e))
                        if streaking.contains(&(o, e.clone())));
                    firing = firing && !explained;
                }
                RuleKind::CredentialExpiry => {
                    let days = r.observed_value.as_ref().and_then(|v| v.as_f64());
                    stage = days.and_then(credential_stage).map(str::to_string);
                    firing = stage.is_some();
                    if let Some(s) = &stage {
                        severity = stage_severity(s, rule.severity);
                    }
                }
                _ => {}
            }
            let subject = subject_of(r);
            let summary = match &r.output {
                Some(o) if firing => format!("{subject}: {o}"),
                _ => format!("{subject}: {}", r.status),
            };
            out.push(Observation {
                rule: rule.id.clone(),
                subject,
                org: r.org,
                firing,
                severity,
                stage,
                summary,
                fields: base_fields(r),
            });
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// The stored state of one alert (one fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub fingerprint: String,
    pub rule: String,
    pub subject: String,
    pub org: Option<u64>,
    pub severity: Severity,
    pub status: AlertStatus,
    pub stage: Option<String>,
    pub summary: String,
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    /// When this firing episode began (unix seconds).
    pub started_at: i64,
    pub last_notified_at: Option<i64>,
    /// Notifications sent in this episode.
    pub notifications: u32,
    pub acked_at: Option<i64>,
    pub acked_by: Option<String>,
    pub resolved_at: Option<i64>,
}

/// What to tell people about this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// Newly firing (or first notification after a silence ended).
    Fire,
    /// Still firing, unacknowledged, past the repeat interval.
    Repeat,
    /// Still firing, at a new stage.
    Escalate,
    Resolve,
}

impl AlertState {
    /// The id of the message for `t`: the same step never yields two messages.
    pub fn message_id(&self, t: Transition) -> String {
        let base = format!("alert:{}:{}", self.fingerprint, self.started_at);
        match t {
            Transition::Fire | Transition::Escalate => {
                format!("{base}:fire:{}", self.stage.as_deref().unwrap_or("-"))
            }
            Transition::Repeat => format!("{base}:repeat:{}", self.notifications),
            Transition::Resolve => format!("{base}:resolved"),
        }
    }
}

/// One step of an alert. `prev` is the stored state, `obs` what the rule sees now (about the
/// same fingerprint). Returns the new state (None: nothing to store) and what to notify.
/// When `silenced`, state still moves but nothing is notified; an unnotified firing alert is
/// announced once the silence ends, and an unnotified one resolves quietly.
pub fn step(
    prev: Option<&AlertState>,
    obs: &Observation,
    rule: &Rule,
    silenced: bool,
    now: i64,
) -> (Option<AlertState>, Option<Transition>) {
    let active = prev.filter(|p| p.status == AlertStatus::Firing);
    match (active, obs.firing) {
        (None, false) => (None, None),
        (None, true) => {
            let mut s = AlertState {
                fingerprint: fingerprint(&obs.rule, &obs.subject),
                rule: obs.rule.clone(),
                subject: obs.subject.clone(),
                org: obs.org,
                severity: obs.severity,
                status: AlertStatus::Firing,
                stage: obs.stage.clone(),
                summary: obs.summary.clone(),
                fields: obs.fields.clone(),
                started_at: now,
                last_notified_at: None,
                notifications: 0,
                acked_at: None,
                acked_by: None,
                resolved_at: None,
            };
            if silenced {
                return (Some(s), None);
            }
            s.last_notified_at = Some(now);
            s.notifications = 1;
            (Some(s), Some(Transition::Fire))
        }
        (Some(p), false) => {
            let mut s = p.clone();
            s.status = AlertStatus::Resolved;
            s.resolved_at = Some(now);
            s.summary = obs.summary.clone();
            let t = (p.notifications > 0 && !silenced).then_some(Transition::Resolve);
            (Some(s), t)
        }
        (Some(p), true) => {
            let mut s = p.clone();
            s.summary = obs.summary.clone();
            s.fields = obs.fields.clone();
            let new_stage = obs.stage != p.stage;
            s.stage = obs.stage.clone();
            s.severity = obs.severity;
            if silenced {
                return (Some(s), None);
            }
            let t = if p.notifications == 0 {
                Some(Transition::Fire)
            } else if new_stage {
                // A new stage is news even if the old one was acknowledged.
                s.acked_at = None;
                s.acked_by = None;
                Some(Transition::Escalate)
            } else if p.acked_at.is_none()
                && rule.repeat_secs > 0
                && p.last_notified_at
                    .is_some_and(|t| now - t >= rule.repeat_secs as i64)
            {
                Some(Transition::Repeat)
            } else {
                None
            };
            if t.is_some() {
                s.last_notified_at = Some(now);
                s.notifications += 1;
            }
            (Some(s), t)
        }
    }
}

/// A silence: matching alerts notify nothing until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// Matches a fingerprint, a rule id, or `org <id>` (every alert of an organization).
    pub matcher: String,
    pub until: i64,
    pub created_at: i64,
    pub reason: Option<String>,
}

impl Silence {
    pub fn matches(&self, fingerprint: &str, rule: &str, org: Option<u64>, now: i64) -> bool {
        now < self.until
            && (self.matcher == fingerprint
                || self.matcher == rule
                || org.is_some_and(|o| self.matcher == format!("org {o}")))
    }
}

/// One notification to send: the alert, what happened, the rule's channels.
pub type Step = (AlertState, Transition, Vec<String>);

/// Organization, resolved or not, channels.
pub type GroupKey = (Option<u64>, bool, Vec<String>);

/// Notifications of one evaluation grouped per organization, transition kind and channels:
/// five entities of one organization failing at once are one message.
pub fn group(steps: &[Step]) -> BTreeMap<GroupKey, Vec<&Step>> {
    let mut groups: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for s in steps {
        let resolved = s.1 == Transition::Resolve;
        groups
            .entry((s.0.org, resolved, s.2.clone()))
            .or_default()
            .push(s);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        default_rules()
            .into_iter()
            .find(|r| r.id == "failure-streak")
            .unwrap()
    }

    fn obs(firing: bool, stage: Option<&str>) -> Observation {
        Observation {
            rule: "failure-streak".into(),
            subject: "org 1 supporters".into(),
            org: Some(1),
            firing,
            severity: Severity::High,
            stage: stage.map(str::to_string),
            summary: "s".into(),
            fields: vec![],
        }
    }

    #[test]
    fn fires_once_repeats_after_cooldown_and_resolves_once() {
        let r = rule();
        let (s, t) = step(None, &obs(true, None), &r, false, 100);
        assert_eq!(t, Some(Transition::Fire));
        let s = s.unwrap();
        let (s2, t) = step(Some(&s), &obs(true, None), &r, false, 200);
        assert_eq!(t, None, "deduplicated");
        let s2 = s2.unwrap();
        let (s3, t) = step(Some(&s2), &obs(true, None), &r, false, 100 + 24 * 3600);
        assert_eq!(t, Some(Transition::Repeat));
        let s3 = s3.unwrap();
        assert_ne!(
            s3.message_id(Transition::Repeat),
            s.message_id(Transition::Fire)
        );
        let (s4, t) = step(Some(&s3), &obs(false, None), &r, false, 100_000);
        assert_eq!(t, Some(Transition::Resolve));
        let (_, t) = step(s4.as_ref(), &obs(false, None), &r, false, 100_001);
        assert_eq!(t, None, "resolved only once");
        assert_eq!(step(None, &obs(false, None), &r, false, 5), (None, None));
    }

    #[test]
    fn acknowledged_alerts_do_not_repeat_but_escalate_and_resolve() {
        let r = rule();
        let (s, _) = step(None, &obs(true, Some("30d")), &r, false, 0);
        let mut s = s.unwrap();
        s.acked_at = Some(1);
        let (s2, t) = step(Some(&s), &obs(true, Some("30d")), &r, false, 10 * 24 * 3600);
        assert_eq!(t, None);
        let (s3, t) = step(
            s2.as_ref(),
            &obs(true, Some("7d")),
            &r,
            false,
            11 * 24 * 3600,
        );
        assert_eq!(t, Some(Transition::Escalate));
        let s3 = s3.unwrap();
        assert_eq!(s3.acked_at, None);
        assert_eq!(
            s3.message_id(Transition::Escalate),
            format!("alert:{}:0:fire:7d", s3.fingerprint)
        );
        let (_, t) = step(Some(&s3), &obs(false, None), &r, false, 12 * 24 * 3600);
        assert_eq!(t, Some(Transition::Resolve));
    }

    #[test]
    fn silenced_alerts_notify_when_the_silence_ends_or_resolve_quietly() {
        let r = rule();
        let (s, t) = step(None, &obs(true, None), &r, true, 0);
        assert_eq!(t, None);
        let s = s.unwrap();
        assert_eq!(s.status, AlertStatus::Firing);
        let (quiet, t) = step(Some(&s), &obs(false, None), &r, false, 5);
        assert_eq!(t, None, "never announced, so no resolution either");
        assert_eq!(quiet.unwrap().status, AlertStatus::Resolved);
        let (_, t) = step(Some(&s), &obs(true, None), &r, false, 5);
        assert_eq!(t, Some(Transition::Fire));
        let sil = Silence {
            id: "x".into(),
            matcher: "org 1".into(),
            until: 10,
            created_at: 0,
            reason: None,
        };
        assert!(sil.matches("fp", "failure-streak", Some(1), 9));
        assert!(!sil.matches("fp", "failure-streak", Some(1), 10));
        assert!(!sil.matches("fp", "failure-streak", Some(2), 9));
    }

    #[test]
    fn credential_stages_and_severities() {
        assert_eq!(credential_stage(31.0), None);
        assert_eq!(credential_stage(30.0), Some("30d"));
        assert_eq!(credential_stage(6.5), Some("7d"));
        assert_eq!(credential_stage(0.5), Some("1d"));
        assert_eq!(credential_stage(0.0), Some("expired"));
        assert_eq!(
            stage_severity("expired", Severity::High),
            Severity::Critical
        );
        assert_eq!(stage_severity("30d", Severity::High), Severity::Medium);
    }

    #[test]
    fn stale_data_explained_by_a_failure_streak_does_not_alert() {
        let streak = CheckResult::new("sync:failureStreak", "component", HealthStatus::Fail)
            .for_org(1, Some("supporters"));
        let stale = CheckResult::new("sync:freshness", "component", HealthStatus::Fail)
            .for_org(1, Some("supporters"));
        let stale2 = CheckResult::new("sync:freshness", "component", HealthStatus::Fail)
            .for_org(1, Some("campaigns"));
        let rep = HealthReport::from_results(vec![streak, stale, stale2], "t".into(), 1);
        let firing: Vec<_> = observe(&default_rules(), &rep)
            .into_iter()
            .filter(|o| o.firing)
            .map(|o| (o.rule, o.subject))
            .collect();
        assert_eq!(
            firing,
            vec![
                ("failure-streak".to_string(), "org 1 supporters".to_string()),
                ("data-stale".to_string(), "org 1 campaigns".to_string()),
            ]
        );
    }

    #[test]
    fn rules_parse_with_clear_errors() {
        let ok = parse_rules(
            r#"[{"id":"a","kind":"dead_letters","severity":"low","channels":["x"],"repeat_secs":60}]"#,
        )
        .unwrap();
        assert!(ok[0].enabled);
        let e = parse_rules(
            r#"[{"id":"a","kind":"nope","severity":"low","channels":["x"],"repeat_secs":60}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("alert rule 0"), "{e}");
        let e = parse_rules(
            r#"[{"id":"a","kind":"dead_letters","severity":"low","channels":[],"repeat_secs":60}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("channels"), "{e}");
    }
}
