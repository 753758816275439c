//! Validation rules: one finding per record and broken rule, each with the fields involved
//! and a suggested fix. Nothing here changes a record.

use crate::domain::aggregates::to_cents;
use crate::domain::{Campaign, Entity, OrgId, RecurringPlan, Supporter, Timestamp, Transaction};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    EmailMissing,
    EmailInvalid,
    NameMissing,
    DateFuture,
    DateImpossible,
    AmountNegative,
    AmountMismatch,
    AmountMissing,
    UnknownSupporter,
    UnknownCampaign,
    CurrencyMismatch,
    DuplicateEmail,
    LikelyDuplicate,
}

pub const ALL_RULES: [Rule; 13] = [
    Rule::EmailMissing,
    Rule::EmailInvalid,
    Rule::NameMissing,
    Rule::DateFuture,
    Rule::DateImpossible,
    Rule::AmountNegative,
    Rule::AmountMismatch,
    Rule::AmountMissing,
    Rule::UnknownSupporter,
    Rule::UnknownCampaign,
    Rule::CurrencyMismatch,
    Rule::DuplicateEmail,
    Rule::LikelyDuplicate,
];

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::EmailMissing => "email_missing",
            Rule::EmailInvalid => "email_invalid",
            Rule::NameMissing => "name_missing",
            Rule::DateFuture => "date_future",
            Rule::DateImpossible => "date_impossible",
            Rule::AmountNegative => "amount_negative",
            Rule::AmountMismatch => "amount_mismatch",
            Rule::AmountMissing => "amount_missing",
            Rule::UnknownSupporter => "unknown_supporter",
            Rule::UnknownCampaign => "unknown_campaign",
            Rule::CurrencyMismatch => "currency_mismatch",
            Rule::DuplicateEmail => "duplicate_email",
            Rule::LikelyDuplicate => "likely_duplicate",
        }
    }

    /// The most points this rule can cost (see docs/analytics.md).
    pub fn weight(self) -> f64 {
        match self {
            Rule::EmailInvalid | Rule::DuplicateEmail => 15.0,
            Rule::EmailMissing
            | Rule::NameMissing
            | Rule::DateFuture
            | Rule::DateImpossible
            | Rule::AmountNegative
            | Rule::AmountMismatch
            | Rule::UnknownSupporter
            | Rule::UnknownCampaign => 10.0,
            Rule::AmountMissing | Rule::CurrencyMismatch | Rule::LikelyDuplicate => 5.0,
        }
    }

    /// The record kinds the rule checks (its rate is over their count).
    pub fn entities(self) -> &'static [Entity] {
        use Entity::*;
        match self {
            Rule::EmailMissing
            | Rule::EmailInvalid
            | Rule::NameMissing
            | Rule::DuplicateEmail
            | Rule::LikelyDuplicate => &[Supporters],
            Rule::DateFuture | Rule::DateImpossible => {
                &[Supporters, Campaigns, Transactions, RecurringPlans]
            }
            Rule::AmountNegative => &[Campaigns, Transactions, RecurringPlans],
            Rule::AmountMismatch | Rule::AmountMissing => &[Transactions],
            Rule::UnknownSupporter | Rule::UnknownCampaign | Rule::CurrencyMismatch => {
                &[Transactions, RecurringPlans]
            }
        }
    }

    pub fn suggested_fix(self) -> &'static str {
        match self {
            Rule::EmailMissing => "Ask the supporter for an email address, or add it in Classy.",
            Rule::EmailInvalid => "Correct the address in Classy (typo, missing domain, spaces).",
            Rule::NameMissing => "Fill in first and last name in Classy from the billing details.",
            Rule::DateFuture => "Check the source system's clock or the imported date in Classy.",
            Rule::DateImpossible => {
                "Correct the dates in Classy: they are out of order or implausibly old."
            }
            Rule::AmountNegative => "Record reversals as refunds, not negative amounts.",
            Rule::AmountMismatch => "Reconcile gross, fees and net in Classy (net = gross - fees).",
            Rule::AmountMissing => {
                "A successful transaction needs its gross amount: fix it in Classy."
            }
            Rule::UnknownSupporter => {
                "Sync supporters, or re-link the record to an existing supporter in Classy."
            }
            Rule::UnknownCampaign => {
                "Sync campaigns, or move the record to an existing campaign in Classy."
            }
            Rule::CurrencyMismatch => "Check the currency: it differs from the campaign's.",
            Rule::DuplicateEmail => "Merge the duplicate supporter records in Classy.",
            Rule::LikelyDuplicate => {
                "Review: same name and postal code; merge in Classy if the same person."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub org_id: OrgId,
    pub entity: Entity,
    pub id: u64,
    pub fields: Vec<String>,
    /// What is wrong; never the full value of a personal field beyond what is needed.
    pub detail: String,
    pub suggested_fix: String,
}

impl Finding {
    fn new(
        rule: Rule,
        org: OrgId,
        entity: Entity,
        id: u64,
        fields: &[&str],
        detail: String,
    ) -> Self {
        Finding {
            rule,
            org_id: org,
            entity,
            id,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            detail,
            suggested_fix: rule.suggested_fix().to_string(),
        }
    }
}

/// An address is valid with one `@`, a non-empty local part, a dotted domain, no spaces and
/// no empty dot-separated labels.
pub fn email_is_valid(raw: &str) -> bool {
    let e = raw.trim();
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    let labels_ok = |s: &str| !s.is_empty() && s.split('.').all(|l| !l.is_empty());
    !e.chars().any(char::is_whitespace)
        && !domain.contains('@')
        && labels_ok(local)
        && labels_ok(domain)
        && domain.contains('.')
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// Earliest plausible date of a Classy record (Classy began in 2011).
pub const EARLIEST: i64 = 946_684_800; // 2000-01-01
/// Clock skew tolerated before a date counts as in the future.
pub const SKEW: i64 = 3_600;

struct Dates {
    future: Vec<&'static str>,
    impossible: Vec<&'static str>,
}

fn dates(fields: &[(&'static str, Option<Timestamp>)], now: i64) -> Dates {
    let mut d = Dates {
        future: Vec::new(),
        impossible: Vec::new(),
    };
    for (name, t) in fields {
        if let Some(t) = t {
            if t.unix() > now + SKEW {
                d.future.push(name);
            } else if t.unix() < EARLIEST {
                d.impossible.push(name);
            }
        }
    }
    d
}

fn date_findings(
    out: &mut Vec<Finding>,
    org: OrgId,
    entity: Entity,
    id: u64,
    fields: &[(&'static str, Option<Timestamp>)],
    order: &[(
        &'static str,
        Option<Timestamp>,
        &'static str,
        Option<Timestamp>,
    )],
    now: i64,
) {
    let mut d = dates(fields, now);
    for (a, ta, b, tb) in order {
        if let (Some(x), Some(y)) = (ta, tb) {
            if y.unix() < x.unix() {
                d.impossible.push(b);
                let detail = format!("{b} is before {a}");
                out.push(Finding::new(
                    Rule::DateImpossible,
                    org,
                    entity,
                    id,
                    &[a, b],
                    detail,
                ));
            }
        }
    }
    if !d.future.is_empty() {
        let detail = format!("{} in the future", d.future.join(", "));
        out.push(Finding::new(
            Rule::DateFuture,
            org,
            entity,
            id,
            &d.future,
            detail,
        ));
    }
    let old: Vec<&str> = d
        .impossible
        .iter()
        .copied()
        .filter(|f| {
            fields
                .iter()
                .any(|(n, t)| n == f && t.is_some_and(|t| t.unix() < EARLIEST))
        })
        .collect();
    if !old.is_empty()
        && !out
            .iter()
            .any(|f| f.rule == Rule::DateImpossible && f.id == id && f.entity == entity)
    {
        let detail = format!("{} before 2000", old.join(", "));
        out.push(Finding::new(
            Rule::DateImpossible,
            org,
            entity,
            id,
            &old,
            detail,
        ));
    }
}

pub fn check_supporter(org: OrgId, s: &Supporter, now: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let e = Entity::Supporters;
    match s.email_address.as_deref().map(str::trim) {
        None | Some("") => out.push(Finding::new(
            Rule::EmailMissing,
            org,
            e,
            s.id,
            &["email_address"],
            "no email address".into(),
        )),
        Some(addr) if !email_is_valid(addr) => out.push(Finding::new(
            Rule::EmailInvalid,
            org,
            e,
            s.id,
            &["email_address"],
            format!("not a valid address: {addr:?}"),
        )),
        _ => {}
    }
    let missing: Vec<&str> = [("first_name", &s.first_name), ("last_name", &s.last_name)]
        .into_iter()
        .filter(|(_, v)| blank(v))
        .map(|(n, _)| n)
        .collect();
    if !missing.is_empty() {
        let detail = format!("missing {}", missing.join(" and "));
        out.push(Finding::new(
            Rule::NameMissing,
            org,
            e,
            s.id,
            &missing,
            detail,
        ));
    }
    date_findings(
        &mut out,
        org,
        e,
        s.id,
        &[
            ("created_at", s.created_at),
            ("updated_at", Some(s.updated_at)),
        ],
        &[("created_at", s.created_at, "updated_at", Some(s.updated_at))],
        now,
    );
    out
}

pub fn check_campaign(org: OrgId, c: &Campaign, now: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let e = Entity::Campaigns;
    if c.goal.is_some_and(|g| g < 0.0) {
        out.push(Finding::new(
            Rule::AmountNegative,
            org,
            e,
            c.id,
            &["goal"],
            "negative goal".into(),
        ));
    }
    // End dates may lie ahead; only creation and update must not.
    date_findings(
        &mut out,
        org,
        e,
        c.id,
        &[
            ("created_at", c.created_at),
            ("updated_at", Some(c.updated_at)),
        ],
        &[("started_at", c.started_at, "ended_at", c.ended_at)],
        now,
    );
    out
}

/// What the store knows about a record's campaign.
pub enum CampaignRef<'a> {
    NotLinked,
    Unknown,
    Known { currency: Option<&'a str> },
}

fn currency_differs(own: Option<&str>, campaign: &CampaignRef) -> Option<String> {
    match (own, campaign) {
        (Some(a), CampaignRef::Known { currency: Some(b) })
            if !a.trim().eq_ignore_ascii_case(b.trim()) =>
        {
            Some(format!("currency {a} but the campaign's is {b}"))
        }
        _ => None,
    }
}

/// Reference checks of one record, `at` = (organization, entity, record id).
fn links(
    out: &mut Vec<Finding>,
    at: (OrgId, Entity, u64),
    supporter: Option<(u64, bool)>,
    campaign_id: Option<u64>,
    campaign: &CampaignRef,
    currency: Option<&str>,
) {
    let (org, e, id) = at;
    if let Some((sid, false)) = supporter {
        let d = format!("supporter {sid} is not in the store");
        out.push(Finding::new(
            Rule::UnknownSupporter,
            org,
            e,
            id,
            &["supporter_id"],
            d,
        ));
    }
    if let (Some(cid), CampaignRef::Unknown) = (campaign_id, campaign) {
        let d = format!("campaign {cid} is not in the store");
        out.push(Finding::new(
            Rule::UnknownCampaign,
            org,
            e,
            id,
            &["campaign_id"],
            d,
        ));
    }
    if let Some(d) = currency_differs(currency, campaign) {
        out.push(Finding::new(
            Rule::CurrencyMismatch,
            org,
            e,
            id,
            &["currency_code"],
            d,
        ));
    }
}

/// `supporter_known`: whether the transaction's supporter is stored (None: no supporter id).
pub fn check_transaction(
    org: OrgId,
    t: &Transaction,
    supporter_known: Option<bool>,
    campaign: CampaignRef,
    now: i64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let e = Entity::Transactions;
    let amounts = [
        ("total_gross_amount", t.total_gross_amount),
        ("donation_gross_amount", t.donation_gross_amount),
        ("donation_net_amount", t.donation_net_amount),
        ("fees_amount", t.fees_amount),
    ];
    let negative: Vec<&str> = amounts
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| v < 0.0))
        .map(|(n, _)| *n)
        .collect();
    if !negative.is_empty() {
        let d = format!("negative {}", negative.join(", "));
        out.push(Finding::new(
            Rule::AmountNegative,
            org,
            e,
            t.id,
            &negative,
            d,
        ));
    }
    if t.is_successful() && t.total_gross_amount.is_none() {
        let d = "successful transaction without a gross amount".to_string();
        out.push(Finding::new(
            Rule::AmountMissing,
            org,
            e,
            t.id,
            &["total_gross_amount"],
            d,
        ));
    }
    let gross = t
        .donation_gross_amount
        .or(t.total_gross_amount)
        .map(to_cents);
    let net = t.donation_net_amount.map(to_cents);
    let fees = t.fees_amount.map(to_cents);
    let mismatch = match (gross, fees, net) {
        (Some(g), Some(f), Some(n)) => (g - f - n).abs() > 1,
        (Some(g), None, Some(n)) => n > g,
        _ => false,
    };
    if mismatch {
        let d = format!(
            "gross {} - fees {} != net {}",
            fmt_cents(gross),
            fmt_cents(fees),
            fmt_cents(net)
        );
        out.push(Finding::new(
            Rule::AmountMismatch,
            org,
            e,
            t.id,
            &[
                "donation_gross_amount",
                "fees_amount",
                "donation_net_amount",
            ],
            d,
        ));
    }
    date_findings(
        &mut out,
        org,
        e,
        t.id,
        &[
            ("purchased_at", t.purchased_at),
            ("created_at", t.created_at),
            ("updated_at", Some(t.updated_at)),
        ],
        &[("purchased_at", t.purchased_at, "refunded_at", t.refunded_at)],
        now,
    );
    let sup = t.supporter_id.zip(supporter_known);
    links(
        &mut out,
        (org, e, t.id),
        sup,
        t.campaign_id,
        &campaign,
        t.currency_code.as_deref(),
    );
    out
}

pub fn check_plan(
    org: OrgId,
    p: &RecurringPlan,
    supporter_known: Option<bool>,
    campaign: CampaignRef,
    now: i64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let e = Entity::RecurringPlans;
    if p.donation_amount.is_some_and(|a| a < 0.0) {
        let d = "negative donation_amount".to_string();
        out.push(Finding::new(
            Rule::AmountNegative,
            org,
            e,
            p.id,
            &["donation_amount"],
            d,
        ));
    }
    date_findings(
        &mut out,
        org,
        e,
        p.id,
        &[
            ("started_at", p.started_at),
            ("created_at", p.created_at),
            ("updated_at", Some(p.updated_at)),
        ],
        &[("started_at", p.started_at, "canceled_at", p.canceled_at)],
        now,
    );
    let sup = p.supporter_id.zip(supporter_known);
    links(
        &mut out,
        (org, e, p.id),
        sup,
        p.campaign_id,
        &campaign,
        p.currency_code.as_deref(),
    );
    out
}

fn fmt_cents(c: Option<i64>) -> String {
    c.map_or("-".into(), |c| format!("{:.2}", c as f64 / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    #[test]
    fn emails() {
        for ok in [
            "a.b@example.org",
            "A.B+x@Example.COM",
            " o'neil@mail.example.co.uk ",
        ] {
            assert!(email_is_valid(ok), "{ok}");
        }
        for bad in [
            "a.b@",
            "no-at-sign.example.com",
            "a b@example.org",
            "@example.org",
            "a..b@example",
            "a@@b.org",
            "a@b",
            "a@b..org",
            ".a@b.org",
        ] {
            assert!(!email_is_valid(bad), "{bad}");
        }
    }

    fn sup(v: serde_json::Value) -> Supporter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn supporter_rules() {
        let clean = sup(
            serde_json::json!({"id": 1, "first_name": "A", "last_name": "B",
            "email_address": "a@b.org", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"}),
        );
        assert!(check_supporter(1, &clean, NOW).is_empty());
        let bad = sup(
            serde_json::json!({"id": 2, "first_name": " ", "email_address": "x@",
            "created_at": "2030-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"}),
        );
        let rules: Vec<Rule> = check_supporter(1, &bad, NOW)
            .iter()
            .map(|f| f.rule)
            .collect();
        assert_eq!(
            rules,
            vec![
                Rule::EmailInvalid,
                Rule::NameMissing,
                Rule::DateImpossible,
                Rule::DateFuture
            ]
        );
    }

    #[test]
    fn transaction_rules() {
        let t: Transaction = serde_json::from_value(serde_json::json!({"id": 5, "supporter_id": 9,
            "campaign_id": 3, "status": "success", "total_gross_amount": 10.0, "donation_gross_amount": 10.0,
            "fees_amount": 0.52, "donation_net_amount": 9.48, "currency_code": "USD",
            "purchased_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}))
        .unwrap();
        let known = CampaignRef::Known {
            currency: Some("USD"),
        };
        assert!(check_transaction(1, &t, Some(true), known, NOW).is_empty());
        let mut bad = t.clone();
        bad.donation_net_amount = Some(-9.0);
        bad.currency_code = Some("EUR".into());
        let rules: Vec<Rule> = check_transaction(
            1,
            &bad,
            Some(false),
            CampaignRef::Known {
                currency: Some("USD"),
            },
            NOW,
        )
        .iter()
        .map(|f| f.rule)
        .collect();
        assert_eq!(
            rules,
            vec![
                Rule::AmountNegative,
                Rule::AmountMismatch,
                Rule::UnknownSupporter,
                Rule::CurrencyMismatch
            ]
        );
        let unknown = check_transaction(1, &t, Some(true), CampaignRef::Unknown, NOW);
        assert_eq!(unknown[0].rule, Rule::UnknownCampaign);
    }
}
