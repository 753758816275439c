//! Tenant templates: a named set of settings applied to an organization in one step (`org add
//! --template`, `org import`, `org update --template`). Each part maps onto an existing model:
//!
//! - `schedule`: sync interval overrides by entity, as `org schedule` sets them.
//! - `plugins`: settings of destination plugins (a JSON object per plugin, as `org plugin add
//!   --settings` takes), merged into the organization's plugin configuration. Never a secret.
//! - `alerts`: alert routing: extra notification channels that receive this organization's
//!   alerts (at or above a severity), next to the channels the rules name.
//! - `reports`: report presets, each becoming a report definition scoped to the organization
//!   (id `<preset>-<org>`, so applying twice creates nothing new).
//!
//! Pure: parsing (every error names its field), validation and the built-in templates.

use super::report::{Recipients, ReportDefinition, ReportScope, Section};
use super::{Entity, OrgId, Severity};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Shortest interval a template may set (seconds).
pub const MIN_INTERVAL_SECS: u64 = 60;
/// Longest interval a template may set (a week, in seconds).
pub const MAX_INTERVAL_SECS: u64 = 7 * 24 * 3600;
/// A preset id is at most this long, so `<preset>-<org id>` fits a report id (48).
pub const MAX_PRESET_ID: usize = 27;

/// A sync interval in seconds, [`MIN_INTERVAL_SECS`]..=[`MAX_INTERVAL_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Interval(pub u64);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected seconds >= {MIN_INTERVAL_SECS} (a whole number)"
            ))
        })?;
        if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "expected seconds >= {MIN_INTERVAL_SECS} and <= {MAX_INTERVAL_SECS}, got {v}"
            )));
        }
        Ok(Interval(v))
    }
}

/// An entity name as a map key, read as a string so an error can name the key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct EntityKey(Entity);

impl<'de> Deserialize<'de> for EntityKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Entity>()
            .map(EntityKey)
            .map_err(serde::de::Error::custom)
    }
}

fn schedule_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Entity, Interval>, D::Error> {
    let m = BTreeMap::<EntityKey, Interval>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// Alert routing: this organization's alerts also go to these notification channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRouting {
    /// Notification channel names (`classy-sync notify channel add`).
    pub channels: Vec<String>,
    /// Only alerts at least this severe (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
}

impl AlertRouting {
    /// Whether an alert of `severity` goes to the routing's channels (`Critical` is the most
    /// severe and the smallest).
    pub fn routes(&self, severity: Severity) -> bool {
        self.min_severity.is_none_or(|m| severity <= m)
    }
}

/// A report definition without its organization: applied, it becomes the report
/// `<id>-<org>` scoped to that organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPreset {
    pub id: String,
    pub sections: Vec<Section>,
    pub period: String,
    pub schedule: String,
    #[serde(default = "utc")]
    pub timezone: String,
    pub recipients: Recipients,
}

fn utc() -> String {
    "UTC".into()
}

impl ReportPreset {
    /// The report id of this preset for `org`: the same every time.
    pub fn report_id(&self, org: OrgId) -> String {
        format!("{}-{org}", self.id)
    }

    /// The report definition of this preset for `org`.
    pub fn definition(&self, org: OrgId, created_at: i64) -> ReportDefinition {
        ReportDefinition {
            id: self.report_id(org),
            scope: ReportScope::Org(org),
            sections: self.sections.clone(),
            period: self.period.clone(),
            schedule: self.schedule.clone(),
            timezone: self.timezone.clone(),
            recipients: self.recipients.clone(),
            created_at,
        }
    }
}

/// A tenant template. Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Sync interval overrides by entity (`supporters`, `campaigns`, `transactions`,
    /// `recurring-plans`), in seconds.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "schedule_map"
    )]
    pub schedule: BTreeMap<Entity, Interval>,
    /// Plugin settings by plugin name (a JSON object each); never secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertRouting>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<ReportPreset>,
}

/// An invalid template: the field (a path like `schedule.supporters`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "template: {}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> TemplateError {
    TemplateError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A template name: 1-48 of `[a-z0-9_-]` (it is part of a store key).
pub fn validate_name(name: &str) -> Result<(), TemplateError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "name",
            format!("{name:?}: use 1-48 lowercase letters, digits, '-' or '_'"),
        ))
    }
}

/// Key names that hold secrets (compared lower-cased, `-` read as `_`).
const SECRET_KEYS: [&str; 8] = [
    "api_key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "private_key",
];

fn looks_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    SECRET_KEYS.iter().any(|s| k.contains(s))
}

/// Values that are secrets whatever their key: a Svix signing secret, a Mailchimp API key
/// (32 hex digits, `-`, data center).
fn looks_secret_value(v: &str) -> bool {
    if v.starts_with("whsec_") {
        return true;
    }
    v.split_once('-').is_some_and(|(key, dc)| {
        key.len() == 32
            && key.bytes().all(|b| b.is_ascii_hexdigit())
            && dc.starts_with("us")
            && dc.len() > 2
            && dc[2..].bytes().all(|b| b.is_ascii_digit())
    })
}

/// The first secret-looking key or value under `v`, as a path below `path`.
fn find_secret(path: &str, v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            let p = format!("{path}.{k}");
            if looks_secret_key(k) {
                Some(p)
            } else {
                find_secret(&p, v)
            }
        }),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_secret(&format!("{path}[{i}]"), v)),
        serde_json::Value::String(s) if looks_secret_value(s) => Some(path.to_string()),
        _ => None,
    }
}

fn valid_channel_name(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 64
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Template {
    /// Parses and validates a template from JSON; the error names the field.
    pub fn parse(json: &str) -> Result<Template, TemplateError> {
        let mut de = serde_json::Deserializer::from_str(json);
        let t: Template = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json appends " at line L column C"; the path says where already.
            let msg = inner.to_string();
            let msg = match msg.rfind(" at line ") {
                Some(i) if !path.is_empty() && path != "." => msg[..i].to_string(),
                _ => msg,
            };
            bad(if path == "." { String::new() } else { path }, msg)
        })?;
        de.end()
            .map_err(|e| bad("", format!("trailing data: {e}")))?;
        t.validate()?;
        Ok(t)
    }

    /// Checks what the types do not: no secrets, plugin and channel names, report presets.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if let Some(d) = &self.description {
            if d.len() > 500 {
                return Err(bad("description", "at most 500 characters"));
            }
        }
        for (name, settings) in &self.plugins {
            let ok = !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            if !ok {
                return Err(bad(
                    format!("plugins.{name}"),
                    "not a plugin name (lower-case letters and '-', e.g. mailchimp)",
                ));
            }
            let v = serde_json::Value::Object(settings.clone());
            if let Some(path) = find_secret(&format!("plugins.{name}"), &v) {
                return Err(bad(
                    path,
                    format!(
                        "secrets never go in a template (set the credential with \
                         `classy-sync org plugin add <org-id> {name}`)"
                    ),
                ));
            }
        }
        if let Some(a) = &self.alerts {
            if a.channels.is_empty() {
                return Err(bad("alerts.channels", "name at least one channel"));
            }
            for (i, c) in a.channels.iter().enumerate() {
                if !valid_channel_name(c) {
                    return Err(bad(
                        format!("alerts.channels[{i}]"),
                        format!("{c:?} is not a notification channel name"),
                    ));
                }
            }
        }
        for (i, p) in self.reports.iter().enumerate() {
            let field = |f: &str| format!("reports[{i}].{f}");
            let id_ok = !p.id.is_empty()
                && p.id.len() <= MAX_PRESET_ID
                && p.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !id_ok {
                return Err(bad(
                    field("id"),
                    format!(
                        "{:?}: use 1-{MAX_PRESET_ID} lowercase letters, digits, '-' or '_'",
                        p.id
                    ),
                ));
            }
            if self.reports[..i].iter().any(|q| q.id == p.id) {
                return Err(bad(field("id"), format!("{:?} appears twice", p.id)));
            }
            // The definition it becomes, for any organization, must be valid.
            p.definition(1, 0)
                .validate()
                .map_err(|e| bad(field(e.field), e.reason))?;
        }
        Ok(())
    }

    /// The schedule overrides as `Organization::schedule` holds them.
    pub fn schedule_secs(&self) -> BTreeMap<Entity, u64> {
        self.schedule.iter().map(|(e, s)| (*e, s.0)).collect()
    }
}

/// The slack channel the built-in report presets are sent to.
pub const BUILTIN_REPORT_CHANNEL: &str = "reports";

/// Names of the built-in templates.
pub const BUILTIN_NAMES: [&str; 3] = ["default", "small-nonprofit", "high-volume"];

/// A built-in template by name.
pub fn builtin(name: &str) -> Option<Template> {
    let schedule = |s: u64, c: u64, t: u64, p: u64| -> BTreeMap<Entity, Interval> {
        [
            (Entity::Supporters, Interval(s)),
            (Entity::Campaigns, Interval(c)),
            (Entity::Transactions, Interval(t)),
            (Entity::RecurringPlans, Interval(p)),
        ]
        .into_iter()
        .collect()
    };
    let preset = |id: &str, sections: &[Section], period: &str, cron: &str| ReportPreset {
        id: id.into(),
        sections: sections.to_vec(),
        period: period.into(),
        schedule: cron.into(),
        timezone: utc(),
        recipients: Recipients {
            emails: Vec::new(),
            slack_channels: vec![BUILTIN_REPORT_CHANNEL.into()],
        },
    };
    match name {
        "default" => Some(Template {
            description: Some(
                "classy-sync's default intervals (supporters 30 min, transactions 15 min, \
                 campaigns and plans 1 h); nothing else"
                    .into(),
            ),
            schedule: schedule(1800, 3600, 900, 3600),
            ..Template::default()
        }),
        "small-nonprofit" => Some(Template {
            description: Some(
                "Slower schedules for small organizations (supporters 6 h, transactions 1 h, \
                 campaigns and plans 12 h) and a monthly report to the `reports` Slack channel"
                    .into(),
            ),
            schedule: schedule(6 * 3600, 12 * 3600, 3600, 12 * 3600),
            reports: vec![preset(
                "monthly",
                &[Section::Headline, Section::Donors, Section::Recurring],
                "30d",
                "0 8 1 * *",
            )],
            ..Template::default()
        }),
        "high-volume" => Some(Template {
            description: Some(
                "Faster schedules for busy organizations (transactions 5 min, supporters 10 \
                 min, campaigns and plans 30 min) and a weekly report to the `reports` Slack \
                 channel"
                    .into(),
            ),
            schedule: schedule(600, 1800, 300, 1800),
            reports: vec![preset(
                "weekly",
                &[
                    Section::Headline,
                    Section::Donors,
                    Section::Campaigns,
                    Section::Recurring,
                    Section::Trends,
                ],
                "7d",
                "0 8 * * 1",
            )],
            ..Template::default()
        }),
        _ => None,
    }
}

pub fn is_builtin(name: &str) -> bool {
    BUILTIN_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> TemplateError {
        Template::parse(json).unwrap_err()
    }

    #[test]
    fn a_full_template_parses() {
        let t = Template::parse(
            r#"{"description":"x",
                "schedule":{"supporters":600,"recurring-plans":7200},
                "plugins":{"mailchimp":{"list_id":"abc","segments":[{"name":"major"}]}},
                "alerts":{"channels":["team"],"min_severity":"high"},
                "reports":[{"id":"weekly","sections":["headline"],"period":"7d",
                            "schedule":"0 8 * * 1","recipients":{"emails":["a@b.org"]}}]}"#,
        )
        .unwrap();
        assert_eq!(t.schedule_secs()[&Entity::RecurringPlans], 7200);
        assert_eq!(t.reports[0].timezone, "UTC");
        assert_eq!(t.reports[0].report_id(42), "weekly-42");
        let d = t.reports[0].definition(42, 5);
        assert_eq!(d.scope, ReportScope::Org(42));
        assert!(d.validate().is_ok());
        let a = t.alerts.unwrap();
        assert!(a.routes(Severity::Critical) && a.routes(Severity::High));
        assert!(!a.routes(Severity::Medium));
        // Round trip: what is stored reads back the same.
        let again = Template::parse(
            &serde_json::to_string(
                &Template::parse(r#"{"schedule":{"transactions":300}}"#).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(again.schedule_secs()[&Entity::Transactions], 300);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"schedule":{"supporters":30}}"#,
                "schedule.supporters",
                "expected seconds >= 60",
            ),
            (
                r#"{"schedule":{"supporters":"fast"}}"#,
                "schedule.supporters",
                "expected seconds >= 60",
            ),
            (
                r#"{"schedule":{"supporters":9999999}}"#,
                "schedule.supporters",
                "<= 604800",
            ),
            (
                r#"{"schedule":{"donors":600}}"#,
                "schedule.donors",
                "unknown entity \"donors\"",
            ),
            (r#"{"schedul":{}}"#, "schedul", "unknown field `schedul`"),
            (
                r#"{"plugins":{"mailchimp":{"list_id":"a","api_key":"x"}}}"#,
                "plugins.mailchimp.api_key",
                "secrets never go in a template",
            ),
            (
                r#"{"plugins":{"mailchimp":{"segments":[{"x":1},{"Auth-Token":"x"}]}}}"#,
                "plugins.mailchimp.segments[1].Auth-Token",
                "secrets never go in a template",
            ),
            (
                r#"{"plugins":{"change-feed":{"url":"whsec_abcdefabcdefabcdef"}}}"#,
                "plugins.change-feed.url",
                "secrets never go in a template",
            ),
            (
                r#"{"plugins":{"mailchimp":{"list":"0123456789abcdef0123456789abcdef-us21"}}}"#,
                "plugins.mailchimp.list",
                "secrets never go in a template",
            ),
            (
                r#"{"plugins":{"Mail Chimp":{}}}"#,
                "plugins.Mail Chimp",
                "not a plugin name",
            ),
            (
                r#"{"plugins":{"mailchimp":[1]}}"#,
                "plugins.mailchimp",
                "expected a map",
            ),
            (
                r#"{"alerts":{"channels":[]}}"#,
                "alerts.channels",
                "at least one",
            ),
            (
                r#"{"alerts":{"channels":["a b"]}}"#,
                "alerts.channels[0]",
                "not a notification channel",
            ),
            (
                r#"{"alerts":{"channels":["a"],"min_severity":"dire"}}"#,
                "alerts.min_severity",
                "unknown variant",
            ),
            (
                r#"{"reports":[{"id":"Weekly","sections":["headline"],"period":"7d","schedule":"0 8 * * 1","recipients":{"emails":["a@b.org"]}}]}"#,
                "reports[0].id",
                "lowercase",
            ),
            (
                r#"{"reports":[{"id":"w","sections":["headline"],"period":"7d","schedule":"0 8 * *","recipients":{"emails":["a@b.org"]}}]}"#,
                "reports[0].schedule",
                "fields",
            ),
            (
                r#"{"reports":[{"id":"w","sections":["headline"],"period":"forever","schedule":"0 8 * * 1","recipients":{"emails":["a@b.org"]}}]}"#,
                "reports[0].period",
                "",
            ),
            (
                r#"{"reports":[{"id":"w","sections":["headline"],"period":"7d","schedule":"0 8 * * 1","timezone":"Mars/Base","recipients":{"emails":["a@b.org"]}}]}"#,
                "reports[0].timezone",
                "IANA",
            ),
            (
                r#"{"reports":[{"id":"w","sections":["headline"],"period":"7d","schedule":"0 8 * * 1","recipients":{}}]}"#,
                "reports[0].recipients",
                "at least one",
            ),
            (
                r#"{"reports":[{"id":"w","sections":["nope"],"period":"7d","schedule":"0 8 * * 1","recipients":{}}]}"#,
                "reports[0].sections[0]",
                "unknown variant",
            ),
            (
                r#"{"reports":[{"id":"w","sections":["headline"],"period":"7d","schedule":"0 8 * * 1","recipients":{"emails":["a@b.org"]}},
                           {"id":"w","sections":["headline"],"period":"7d","schedule":"0 8 * * 1","recipients":{"emails":["a@b.org"]}}]}"#,
                "reports[1].id",
                "twice",
            ),
        ];
        for (json, field, reason) in cases {
            let e = err(json);
            assert_eq!(&e.field, field, "{json}: {e}");
            assert!(e.reason.contains(reason), "{json}: {e}");
            assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
        }
        // A secret's value is never repeated in the error.
        let e = err(r#"{"plugins":{"mailchimp":{"api_key":"hunter2"}}}"#);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let top = err("1");
        assert!(top.field.is_empty(), "{top:?}");
        assert!(err("{} x").reason.contains("trailing"));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("small-nonprofit_2").is_ok());
        for n in ["", "Big", "a b", "a#b", &"x".repeat(49)] {
            assert_eq!(validate_name(n).unwrap_err().field, "name", "{n}");
        }
    }

    #[test]
    fn builtins_are_valid_and_listed() {
        for n in BUILTIN_NAMES {
            let t = builtin(n).unwrap();
            t.validate().unwrap();
            validate_name(n).unwrap();
            assert!(is_builtin(n));
            // They survive a store round trip.
            let back = Template::parse(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t);
        }
        assert!(builtin("custom").is_none());
        let slow = builtin("small-nonprofit").unwrap().schedule_secs();
        let fast = builtin("high-volume").unwrap().schedule_secs();
        for e in Entity::ALL {
            assert!(slow[&e] > e.default_interval().as_secs(), "{e}");
            assert!(fast[&e] < e.default_interval().as_secs(), "{e}");
            assert_eq!(
                builtin("default").unwrap().schedule_secs()[&e],
                e.default_interval().as_secs()
            );
        }
        assert_eq!(
            builtin("high-volume").unwrap().reports[0].schedule,
            "0 8 * * 1"
        );
    }
}
