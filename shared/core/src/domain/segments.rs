//! Donor segments: named rules over a supporter's giving aggregates, evaluated at a point in
//! time (Lapsed and Lost move with the calendar, without any data change). Destinations turn
//! segments into tags. Pure: no I/O.

use super::aggregates::SupporterAggregates;
use super::Timestamp;
use serde::{Deserialize, Serialize};

/// What puts a supporter in a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case", deny_unknown_fields)]
pub enum SegmentCondition {
    /// Lifetime gross giving of at least `amount` (organization currency).
    LifetimeAtLeast { amount: f64 },
    /// At least one active recurring plan.
    ActiveRecurringPlan,
    /// Exactly one successful gift, given within the last `within_days`.
    FirstTimeDonor { within_days: u32 },
    /// Has given, and the last gift is at least `min_days` (and under `max_days`, when set) old.
    NoGiftFor {
        min_days: u32,
        #[serde(default)]
        max_days: Option<u32>,
    },
    /// A single gift of at least `amount`.
    LargestGiftAtLeast { amount: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRule {
    /// The tag name the destination shows (e.g. "Major Donor").
    pub tag: String,
    #[serde(flatten)]
    pub condition: SegmentCondition,
}

impl SegmentRule {
    pub fn new(tag: &str, condition: SegmentCondition) -> Self {
        SegmentRule {
            tag: tag.to_string(),
            condition,
        }
    }
}

/// The defaults: Major Donor (lifetime ≥ 1,000), Recurring Donor, First-Time Donor (one gift
/// in the last 12 months), Lapsed (12–24 months without a gift), Lost (24+ months).
pub fn default_rules() -> Vec<SegmentRule> {
    use SegmentCondition::*;
    vec![
        SegmentRule::new("Major Donor", LifetimeAtLeast { amount: 1000.0 }),
        SegmentRule::new("Recurring Donor", ActiveRecurringPlan),
        SegmentRule::new("First-Time Donor", FirstTimeDonor { within_days: 365 }),
        SegmentRule::new(
            "Lapsed",
            NoGiftFor {
                min_days: 365,
                max_days: Some(730),
            },
        ),
        SegmentRule::new(
            "Lost",
            NoGiftFor {
                min_days: 730,
                max_days: None,
            },
        ),
    ]
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("segment rule {index} ({tag:?}): {message}")]
pub struct RuleError {
    pub index: usize,
    pub tag: String,
    pub message: String,
}

/// Checks a rule set: non-empty unique tags of at most 100 characters, sane numbers.
pub fn validate_rules(rules: &[SegmentRule]) -> Result<(), RuleError> {
    let mut seen = std::collections::HashSet::new();
    for (index, r) in rules.iter().enumerate() {
        let fail = |message: &str| RuleError {
            index,
            tag: r.tag.clone(),
            message: message.to_string(),
        };
        let tag = r.tag.trim();
        if tag.is_empty() || tag.len() > 100 {
            return Err(fail("tag must be 1 to 100 characters"));
        }
        if !seen.insert(tag.to_lowercase()) {
            return Err(fail("tag is used by another rule"));
        }
        match &r.condition {
            SegmentCondition::LifetimeAtLeast { amount }
            | SegmentCondition::LargestGiftAtLeast { amount }
                if !amount.is_finite() || *amount < 0.0 =>
            {
                return Err(fail("amount must be a non-negative number"));
            }
            SegmentCondition::NoGiftFor {
                min_days,
                max_days: Some(max),
            } if max <= min_days => return Err(fail("max_days must be greater than min_days")),
            _ => {}
        }
    }
    Ok(())
}

fn days_since(then: Timestamp, now: Timestamp) -> i64 {
    (now.unix() - then.unix()).div_euclid(86_400)
}

impl SegmentCondition {
    pub fn matches(&self, a: &SupporterAggregates, now: Timestamp) -> bool {
        match self {
            SegmentCondition::LifetimeAtLeast { amount } => {
                a.gift_count > 0 && a.lifetime_gross_amount + 1e-9 >= *amount
            }
            SegmentCondition::ActiveRecurringPlan => a.has_active_recurring_plan,
            SegmentCondition::FirstTimeDonor { within_days } => {
                a.gift_count == 1
                    && a.last_gift_at
                        .is_some_and(|l| days_since(l, now) < i64::from(*within_days))
            }
            SegmentCondition::NoGiftFor { min_days, max_days } => a.last_gift_at.is_some_and(|l| {
                let d = days_since(l, now);
                d >= i64::from(*min_days) && max_days.is_none_or(|m| d < i64::from(m))
            }),
            SegmentCondition::LargestGiftAtLeast { amount } => {
                a.largest_gift_amount.is_some_and(|g| g + 1e-9 >= *amount)
            }
        }
    }
}

/// The tags of every rule the supporter matches, in rule order.
pub fn segment_tags(rules: &[SegmentRule], a: &SupporterAggregates, now: Timestamp) -> Vec<String> {
    rules
        .iter()
        .filter(|r| r.condition.matches(a, now))
        .map(|r| r.tag.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn giver(total: f64, count: u64, last: &str, plan: bool) -> SupporterAggregates {
        SupporterAggregates {
            lifetime_gross_amount: total,
            lifetime_net_amount: total,
            gift_count: count,
            first_gift_at: Some(ts(last)),
            last_gift_at: Some(ts(last)),
            largest_gift_amount: Some(total),
            has_active_recurring_plan: plan,
        }
    }

    #[test]
    fn defaults_cover_major_recurring_first_time_lapsed_and_lost() {
        let rules = default_rules();
        validate_rules(&rules).unwrap();
        let now = ts("2025-06-01T00:00:00Z");
        let tags = |a: &SupporterAggregates| segment_tags(&rules, a, now);
        assert_eq!(
            tags(&giver(1500.0, 1, "2025-05-01T00:00:00Z", true)),
            ["Major Donor", "Recurring Donor", "First-Time Donor"]
        );
        assert_eq!(
            tags(&giver(50.0, 3, "2025-05-01T00:00:00Z", false)),
            Vec::<String>::new()
        );
        assert_eq!(
            tags(&giver(50.0, 1, "2024-05-01T00:00:00Z", false)),
            ["Lapsed"]
        );
        assert_eq!(
            tags(&giver(50.0, 2, "2023-05-01T00:00:00Z", false)),
            ["Lost"]
        );
        assert_eq!(tags(&SupporterAggregates::default()), Vec::<String>::new());
    }

    #[test]
    fn time_alone_moves_a_supporter_from_first_time_to_lapsed_to_lost() {
        let rules = default_rules();
        let a = giver(10.0, 1, "2024-01-01T00:00:00Z", false);
        assert_eq!(
            segment_tags(&rules, &a, ts("2024-06-01T00:00:00Z")),
            ["First-Time Donor"]
        );
        assert_eq!(
            segment_tags(&rules, &a, ts("2025-01-01T00:00:00Z")),
            ["Lapsed"]
        );
        assert_eq!(
            segment_tags(&rules, &a, ts("2026-01-01T00:00:00Z")),
            ["Lost"]
        );
    }

    #[test]
    fn rules_parse_from_json_and_bad_rules_name_the_problem() {
        let rules: Vec<SegmentRule> = serde_json::from_str(
            r#"[{"tag":"Big","when":"lifetime_at_least","amount":500},
                {"tag":"Gone","when":"no_gift_for","min_days":30}]"#,
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        let dup = vec![rules[0].clone(), rules[0].clone()];
        let e = validate_rules(&dup).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.to_string().contains("another rule"), "{e}");
        let bad = vec![SegmentRule::new(
            "X",
            SegmentCondition::NoGiftFor {
                min_days: 10,
                max_days: Some(5),
            },
        )];
        assert!(validate_rules(&bad).is_err());
        assert!(
            serde_json::from_str::<Vec<SegmentRule>>(r#"[{"tag":"a","when":"nope"}]"#).is_err()
        );
    }
}
