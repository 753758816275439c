//! Pure rules of the Mailchimp destination: the member a supporter should be, what was last
//! acknowledged, and the change (if any) between them. Consent lives here:
//! - only `opt_in` supporters are ever asked to be `subscribed`;
//! - `status: subscribed` is sent for a first push or to re-subscribe someone *we*
//!   unsubscribed, in a batch with `update_existing`; every other change goes in a batch
//!   without it, so an existing member's status is left alone (the `status` it carries
//!   applies to a new member only);
//! - a member Mailchimp refused for compliance is `Blocked`: never asked again, and not sent
//!   at all until the supporter's data changes;
//! - a withdrawn opt-in of a member we subscribed is sent as `unsubscribed`;
//! - a supporter without consent we never pushed is not sent at all.

use crate::mailchimp_api::{subscriber_hash, BatchMember};
use classy_sync_core::domain::aggregates::SupporterAggregates;
use classy_sync_core::domain::segments::{segment_tags, SegmentRule};
use classy_sync_core::domain::Timestamp;
use classy_sync_core::ports::SupporterView;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The merge fields this destination keeps: (tag, name, type).
pub const MERGE_FIELDS: &[(&str, &str, &str)] = &[
    ("FNAME", "First Name", "text"),
    ("LNAME", "Last Name", "text"),
    ("LIFETIME", "Lifetime Giving", "number"),
    ("GIFTCOUNT", "Gift Count", "number"),
    ("FIRSTGIFT", "First Gift Date", "date"),
    ("LASTGIFT", "Last Gift Date", "date"),
    ("LARGEST", "Largest Gift", "number"),
    ("RECURRING", "Recurring Donor", "text"),
];

/// What a supporter should look like in the audience.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredMember {
    pub supporter: u64,
    pub hash: String,
    pub email: String,
    pub consent: bool,
    pub merge_fields: BTreeMap<String, Value>,
    pub tags: Vec<String>,
    pub updated_at: Timestamp,
}

/// The status we last set (or learned) for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnownStatus {
    Subscribed,
    Unsubscribed,
    /// Mailchimp refused to subscribe them (they unsubscribed or were cleaned there).
    Blocked,
    /// Never sent (the owning supporter has no consent): only who owns the address is
    /// remembered, so an older supporter sharing it is not sent in its place later.
    Absent,
}

/// What Mailchimp last acknowledged for a member (`PLUGIN#mailchimp#M#<hash>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberState {
    pub supporter: u64,
    pub email: String,
    pub status: KnownStatus,
    pub consent: bool,
    /// The merge fields as acknowledged; empty when unknown (re-sent next time).
    #[serde(default)]
    pub merge_fields: BTreeMap<String, Value>,
    /// The segment tags this destination set and has not removed.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the owning supporter record was last updated (unix seconds): of several
    /// supporters sharing one address, only the most recently updated one drives the member.
    #[serde(default)]
    pub owner_updated_at: i64,
}

/// Whether `a` should own an address rather than `b`: the more recently updated supporter
/// (whole seconds, as stored), the higher id on a tie.
pub fn newer(a: &DesiredMember, b: &DesiredMember) -> bool {
    (a.updated_at.unix(), a.supporter) > (b.updated_at.unix(), b.supporter)
}

impl MemberState {
    /// Whether this member belongs to another, more recently updated supporter than `d`.
    pub fn owned_by_newer(&self, d: &DesiredMember) -> bool {
        self.supporter != d.supporter
            && (self.owner_updated_at, self.supporter) > (d.updated_at.unix(), d.supporter)
    }
}

fn date(t: Option<Timestamp>) -> Value {
    json!(t
        .map(|t| t.0.format("%Y-%m-%d").to_string())
        .unwrap_or_default())
}

fn money(x: f64) -> Value {
    json!((x * 100.0).round() / 100.0)
}

/// The merge field values for a supporter.
pub fn merge_fields(
    s: &classy_sync_core::domain::Supporter,
    a: &SupporterAggregates,
) -> BTreeMap<String, Value> {
    let text = |v: &Option<String>| json!(v.as_deref().unwrap_or("").trim());
    BTreeMap::from([
        ("FNAME".to_string(), text(&s.first_name)),
        ("LNAME".to_string(), text(&s.last_name)),
        ("LIFETIME".to_string(), money(a.lifetime_gross_amount)),
        ("GIFTCOUNT".to_string(), json!(a.gift_count)),
        ("FIRSTGIFT".to_string(), date(a.first_gift_at)),
        ("LASTGIFT".to_string(), date(a.last_gift_at)),
        (
            "LARGEST".to_string(),
            money(a.largest_gift_amount.unwrap_or(0.0)),
        ),
        (
            "RECURRING".to_string(),
            json!(if a.has_active_recurring_plan {
                "Yes"
            } else {
                "No"
            }),
        ),
    ])
}

/// The address rule is the core's, shared with the analytics' consent counts.
pub use classy_sync_core::domain::entities::plausible_email;

/// The desired member, or `None` for a supporter without a usable address.
pub fn desired(v: &SupporterView, rules: &[SegmentRule], now: Timestamp) -> Option<DesiredMember> {
    let email = v.supporter.email_address.as_deref()?.trim();
    if !plausible_email(email) {
        return None;
    }
    Some(DesiredMember {
        supporter: v.supporter.id,
        hash: subscriber_hash(email),
        email: email.to_string(),
        consent: v.supporter.opt_in,
        merge_fields: merge_fields(&v.supporter, &v.aggregates),
        tags: segment_tags(rules, &v.aggregates, now),
        updated_at: v.supporter.updated_at,
    })
}

/// One change to make in the audience.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberChange {
    pub desired: DesiredMember,
    pub kind: ChangeKind,
    /// The status to set (`None` leaves an existing member's status alone).
    pub status: Option<KnownStatus>,
    /// Segment tags to remove (segments the supporter left).
    pub remove_tags: Vec<String>,
    pub previous: Option<MemberState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Unsubscribe,
    Resubscribe,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Unsubscribe => "unsubscribe",
            ChangeKind::Resubscribe => "resubscribe",
        }
    }
}

/// The change that brings the audience from `known` to `want`, if any.
pub fn plan(want: &DesiredMember, known: Option<&MemberState>) -> Option<MemberChange> {
    let change = |kind, status, remove_tags| {
        Some(MemberChange {
            desired: want.clone(),
            kind,
            status,
            remove_tags,
            previous: known.cloned(),
        })
    };
    let Some(k) = known.filter(|k| k.status != KnownStatus::Absent) else {
        // Never pushed: only consented supporters are sent.
        return if want.consent {
            change(
                ChangeKind::Create,
                Some(KnownStatus::Subscribed),
                Vec::new(),
            )
        } else {
            None
        };
    };
    let remove: Vec<String> = k
        .tags
        .iter()
        .filter(|t| !want.tags.contains(t))
        .cloned()
        .collect();
    let status = match (want.consent, k.status) {
        (true, KnownStatus::Unsubscribed) => Some(KnownStatus::Subscribed),
        (false, KnownStatus::Subscribed) => Some(KnownStatus::Unsubscribed),
        _ => None,
    };
    let same = k.email == want.email
        && k.consent == want.consent
        && k.merge_fields == want.merge_fields
        && remove.is_empty()
        && want.tags.iter().all(|t| k.tags.contains(t));
    if same && status.is_none() {
        return None;
    }
    let kind = match status {
        Some(KnownStatus::Subscribed) => ChangeKind::Resubscribe,
        Some(_) => ChangeKind::Unsubscribe,
        None => ChangeKind::Update,
    };
    change(kind, status, remove)
}

fn status_name(s: KnownStatus) -> &'static str {
    match s {
        KnownStatus::Subscribed => "subscribed",
        KnownStatus::Unsubscribed | KnownStatus::Blocked | KnownStatus::Absent => "unsubscribed",
    }
}

/// Whether the address was never sent: no record, or only its owner's (`Absent`).
pub fn never_sent(known: Option<&MemberState>) -> bool {
    known.is_none_or(|k| k.status == KnownStatus::Absent)
}

/// The record of an address whose owner is not in the audience (no consent, never sent).
pub fn absent(want: &DesiredMember) -> MemberState {
    MemberState {
        supporter: want.supporter,
        email: want.email.clone(),
        status: KnownStatus::Absent,
        consent: want.consent,
        merge_fields: BTreeMap::new(),
        tags: Vec::new(),
        owner_updated_at: want.updated_at.unix(),
    }
}

impl MemberChange {
    /// Whether the change sets the member's status: sent in a batch with `update_existing`.
    pub fn changes_status(&self) -> bool {
        self.status.is_some()
    }

    /// The batch member: segment tags ride along (added; `sync_tags` stays false so tags
    /// the nonprofit set by hand survive), removals go through the segments endpoint. The
    /// status is the one to set ([`Self::changes_status`]) or, for a change that leaves the
    /// status alone (sent without `update_existing`), the one a new member gets: a withdrawn
    /// consent never creates a subscribed member.
    pub fn batch_member(&self) -> BatchMember {
        let status = match self.status {
            Some(s) => status_name(s),
            None if self.desired.consent => "subscribed",
            None => "unsubscribed",
        };
        BatchMember {
            email_address: self.desired.email.clone(),
            status: status.to_string(),
            merge_fields: self.desired.merge_fields.clone(),
            tags: self.desired.tags.clone(),
        }
    }

    /// The state to remember once Mailchimp accepted the change.
    pub fn acknowledged(&self) -> MemberState {
        let status = match (self.status, self.previous.as_ref().map(|p| p.status)) {
            (Some(s), _) => s,
            (None, Some(KnownStatus::Absent)) => KnownStatus::Subscribed,
            (None, Some(p)) => p,
            (None, None) => KnownStatus::Subscribed,
        };
        MemberState {
            supporter: self.desired.supporter,
            email: self.desired.email.clone(),
            status,
            consent: self.desired.consent,
            merge_fields: self.desired.merge_fields.clone(),
            tags: self.desired.tags.clone(),
            owner_updated_at: self.desired.updated_at.unix(),
        }
    }

    /// The state to remember when Mailchimp refused the subscribe for compliance: final for
    /// this data. The status is never asked again, and the member is not sent again until
    /// the supporter's data differs from what was refused (then without a status change).
    pub fn blocked(&self) -> MemberState {
        MemberState {
            supporter: self.desired.supporter,
            email: self.desired.email.clone(),
            status: KnownStatus::Blocked,
            consent: self.desired.consent,
            merge_fields: self.desired.merge_fields.clone(),
            tags: self.desired.tags.clone(),
            owner_updated_at: self.desired.updated_at.unix(),
        }
    }

    /// One line of a dry run's diff.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let old = self.previous.as_ref();
        for (k, v) in &self.desired.merge_fields {
            let before = old.and_then(|o| o.merge_fields.get(k));
            if before != Some(v) {
                parts.push(match before {
                    Some(b) => format!("{k} {b} -> {v}"),
                    None => format!("{k}={v}"),
                });
            }
        }
        let added: Vec<&String> = self
            .desired
            .tags
            .iter()
            .filter(|t| old.is_none_or(|o| !o.tags.contains(t)))
            .collect();
        if !added.is_empty() {
            parts.push(format!("tags +{added:?}"));
        }
        if !self.remove_tags.is_empty() {
            parts.push(format!("tags -{:?}", self.remove_tags));
        }
        let status = self
            .status
            .map(|s| format!(" status={}", status_name(s)))
            .unwrap_or_default();
        format!(
            "{} {}{status}: {}",
            self.kind.name(),
            self.desired.email,
            if parts.is_empty() {
                "no field changes".to_string()
            } else {
                parts.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classy_sync_core::domain::segments::default_rules;
    use classy_sync_core::domain::Supporter;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn view(opt_in: bool, total: f64) -> SupporterView {
        let supporter: Supporter = serde_json::from_value(json!({
            "id": 5, "first_name": "Ana", "last_name": "Lee", "email_address": "Ana@Example.org",
            "opt_in": opt_in, "updated_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap();
        let aggregates = SupporterAggregates {
            lifetime_gross_amount: total,
            lifetime_net_amount: total,
            gift_count: 1,
            first_gift_at: Some(ts("2025-01-01T00:00:00Z")),
            last_gift_at: Some(ts("2025-01-01T00:00:00Z")),
            largest_gift_amount: Some(total),
            has_active_recurring_plan: false,
        };
        SupporterView {
            supporter,
            aggregates,
            superseded: false,
        }
    }

    fn want(opt_in: bool, total: f64) -> DesiredMember {
        desired(
            &view(opt_in, total),
            &default_rules(),
            ts("2025-02-01T00:00:00Z"),
        )
        .unwrap()
    }

    #[test]
    fn desired_member_has_giving_fields_and_segment_tags() {
        let d = want(true, 1500.0);
        assert_eq!(d.hash, subscriber_hash("ana@example.org"));
        assert_eq!(d.merge_fields["LIFETIME"], json!(1500.0));
        assert_eq!(d.merge_fields["FIRSTGIFT"], json!("2025-01-01"));
        assert_eq!(d.merge_fields["RECURRING"], json!("No"));
        assert_eq!(d.tags, ["Major Donor", "First-Time Donor"]);
        let mut v = view(true, 1.0);
        v.supporter.email_address = Some("not an email".into());
        assert!(desired(&v, &[], ts("2025-02-01T00:00:00Z")).is_none());
    }

    #[test]
    fn only_consented_supporters_are_created_and_withdrawals_unsubscribe() {
        assert!(plan(&want(false, 10.0), None).is_none());
        let create = plan(&want(true, 10.0), None).unwrap();
        assert_eq!(create.kind, ChangeKind::Create);
        assert!(create.changes_status());
        assert_eq!(create.batch_member().status, "subscribed");
        let known = create.acknowledged();
        assert!(plan(&want(true, 10.0), Some(&known)).is_none());

        let withdraw = plan(&want(false, 10.0), Some(&known)).unwrap();
        assert_eq!(withdraw.kind, ChangeKind::Unsubscribe);
        assert!(withdraw.changes_status());
        assert_eq!(withdraw.batch_member().status, "unsubscribed");
        let gone = withdraw.acknowledged();
        assert_eq!(gone.status, KnownStatus::Unsubscribed);
        // Unchanged withdrawn supporter: nothing more is sent.
        assert!(plan(&want(false, 10.0), Some(&gone)).is_none());
        // Opting in again asks Mailchimp to subscribe; Mailchimp may refuse (compliance).
        let again = plan(&want(true, 10.0), Some(&gone)).unwrap();
        assert_eq!(again.kind, ChangeKind::Resubscribe);
    }

    #[test]
    fn an_absent_owner_is_no_member_until_it_consents() {
        let record = absent(&want(false, 10.0));
        assert_eq!(record.status, KnownStatus::Absent);
        assert!(plan(&want(false, 10.0), Some(&record)).is_none());
        let create = plan(&want(true, 10.0), Some(&record)).unwrap();
        assert_eq!(create.kind, ChangeKind::Create);
        assert_eq!(create.batch_member().status, "subscribed");
        assert_eq!(create.acknowledged().status, KnownStatus::Subscribed);
        // An older supporter of the same address does not take it over.
        let mut older = want(true, 10.0);
        older.supporter = 4;
        assert!(record.owned_by_newer(&older));
    }

    #[test]
    fn a_blocked_member_is_not_sent_again_until_its_data_changes_and_never_resubscribed() {
        let create = plan(&want(true, 10.0), None).unwrap();
        let blocked = create.blocked();
        // Refused: final for this data.
        assert!(plan(&want(true, 10.0), Some(&blocked)).is_none());
        // Changed data goes out without a status change.
        let next = plan(&want(true, 2000.0), Some(&blocked)).unwrap();
        assert_eq!(next.kind, ChangeKind::Update);
        assert!(!next.changes_status());
        let ack = next.acknowledged();
        assert_eq!(ack.status, KnownStatus::Blocked);
        assert!(plan(&want(true, 2000.0), Some(&ack)).is_none());
        // A withdrawn consent of a blocked member: no status change either.
        let withdrawn = plan(&want(false, 2000.0), Some(&ack)).unwrap();
        assert!(!withdrawn.changes_status());
        assert_eq!(withdrawn.batch_member().status, "unsubscribed");
    }

    #[test]
    fn leaving_a_segment_removes_its_tag_and_the_diff_says_so() {
        let known = plan(&want(true, 1500.0), None).unwrap().acknowledged();
        let mut lower = want(true, 1500.0);
        lower.merge_fields.insert("LIFETIME".into(), json!(900.0));
        lower.tags = vec!["First-Time Donor".into()];
        let c = plan(&lower, Some(&known)).unwrap();
        assert_eq!(c.kind, ChangeKind::Update);
        assert_eq!(c.remove_tags, ["Major Donor"]);
        let line = c.describe();
        assert!(line.contains("LIFETIME 1500.0 -> 900.0"), "{line}");
        assert!(line.contains("tags -[\"Major Donor\"]"), "{line}");
    }
}
