//! The quality score: 100 minus, per rule, its weight times the share of checked records it
//! flags, scaled so that flagging 10% or more of them costs the whole weight. Floored at 0.

use super::rules::{Rule, ALL_RULES};
use crate::domain::Entity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A rule flagging this share of its records costs its full weight.
pub const FULL_COST_SHARE: f64 = 0.10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleCost {
    pub rule: Rule,
    pub weight: f64,
    /// Records flagged (for duplicates: records beyond the first of each group).
    pub records: u64,
    pub checked: u64,
    pub points_lost: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityScore {
    /// 0–100, one decimal.
    pub score: f64,
    pub checked: BTreeMap<String, u64>,
    /// Rules that cost points, most costly first.
    pub costs: Vec<RuleCost>,
}

#[derive(Default)]
pub struct ScoreBuilder {
    checked: BTreeMap<Entity, u64>,
    flagged: BTreeMap<Rule, u64>,
}

impl ScoreBuilder {
    pub fn checked(&mut self, e: Entity, n: u64) {
        *self.checked.entry(e).or_default() += n;
    }

    pub fn flagged(&mut self, r: Rule, n: u64) {
        *self.flagged.entry(r).or_default() += n;
    }

    pub fn finish(&self) -> QualityScore {
        let mut costs = Vec::new();
        for rule in ALL_RULES {
            let records = self.flagged.get(&rule).copied().unwrap_or(0);
            if records == 0 {
                continue;
            }
            let checked: u64 = rule
                .entities()
                .iter()
                .map(|e| self.checked.get(e).copied().unwrap_or(0))
                .sum();
            let share = records as f64 / checked.max(1) as f64;
            let lost = rule.weight() * (share / FULL_COST_SHARE).min(1.0);
            costs.push(RuleCost {
                rule,
                weight: rule.weight(),
                records,
                checked,
                points_lost: (lost * 10.0).round() / 10.0,
            });
        }
        costs.sort_by(|a, b| {
            b.points_lost
                .total_cmp(&a.points_lost)
                .then(a.rule.cmp(&b.rule))
        });
        let lost: f64 = costs.iter().map(|c| c.points_lost).sum();
        QualityScore {
            score: ((100.0 - lost).max(0.0) * 10.0).round() / 10.0,
            checked: self
                .checked
                .iter()
                .map(|(e, n)| (e.name().to_string(), *n))
                .collect(),
            costs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_scales_with_share_and_caps_at_weight() {
        let mut b = ScoreBuilder::default();
        b.checked(Entity::Supporters, 1000);
        b.checked(Entity::Transactions, 100);
        b.flagged(Rule::EmailInvalid, 10); // 1% of 1000: 1.5 of 15
        b.flagged(Rule::AmountMismatch, 50); // 50%: the whole 10
        let s = b.finish();
        assert_eq!(s.costs[0].rule, Rule::AmountMismatch);
        assert_eq!(s.costs[1].points_lost, 1.5);
        assert_eq!(s.score, 88.5);
        assert_eq!(ScoreBuilder::default().finish().score, 100.0);
    }
}
