//! Quality facts: what the quality pass needs of one supporter, transaction or plan, small
//! enough to pack hundreds to an item. The rules a record breaks whatever the time and the
//! other records are computed once, when the record is written; what depends on them is
//! kept as data: the latest checked date (a date in the future depends on `now`), the
//! supporter, campaign and currency (links depend on what else is stored) and the
//! duplicate-key parts. [`Facts::rules_at`] then gives exactly the rules the full check
//! gives, for any `now` and any set of stored supporters and campaigns.

use super::duplicates::duplicate_parts;
use super::rules::{
    check_plan, check_supporter, check_transaction, email_is_valid, CampaignRef, Rule, ALL_RULES,
    SKEW,
};
use crate::domain::{RecurringPlan, Supporter, Timestamp, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Records `[b × N, (b + 1) × N)` of an entity share quality rollup item `b`.
pub const FACTS_PER_ROLLUP: u64 = 256;

/// A `now` after every date, so that no date counts as in the future.
const NEVER_FUTURE: i64 = i64::MAX - SKEW - 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(rename = "i")]
    pub id: u64,
    /// Rules broken whatever `now` and the other records are: bit `k` is `ALL_RULES[k]`.
    #[serde(rename = "r", default, skip_serializing_if = "is_zero")]
    pub rules: u16,
    /// The latest of the dates the future-date rule checks.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<i64>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub supporter: Option<u64>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<u64>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Normalized valid email (supporters; empty otherwise).
    #[serde(rename = "e", default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// `first|last|postal` (supporters with all three; empty otherwise).
    #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

fn bit(rule: Rule) -> u16 {
    1 << ALL_RULES.iter().position(|r| *r == rule).expect("listed")
}

fn bits(rules: impl IntoIterator<Item = Rule>) -> u16 {
    rules.into_iter().fold(0, |acc, r| acc | bit(r))
}

fn latest(dates: &[Option<Timestamp>]) -> Option<i64> {
    dates.iter().flatten().map(|t| t.unix()).max()
}

impl Facts {
    pub fn of_supporter(s: &Supporter) -> Self {
        let valid = s.email_address.as_deref().is_some_and(email_is_valid);
        let (email, name) = duplicate_parts(s, valid);
        Facts {
            id: s.id,
            rules: bits(
                check_supporter(0, s, NEVER_FUTURE)
                    .into_iter()
                    .map(|f| f.rule),
            ),
            latest: latest(&[s.created_at, Some(s.updated_at)]),
            email,
            name,
            ..Facts::default()
        }
    }

    pub fn of_transaction(t: &Transaction) -> Self {
        // Links as if every reference resolved; they are judged when the report runs.
        let found = check_transaction(
            0,
            t,
            t.supporter_id.map(|_| true),
            CampaignRef::NotLinked,
            NEVER_FUTURE,
        );
        Facts {
            id: t.id,
            rules: bits(found.into_iter().map(|f| f.rule)),
            latest: latest(&[t.purchased_at, t.created_at, Some(t.updated_at)]),
            supporter: t.supporter_id,
            campaign: t.campaign_id,
            currency: t.currency_code.clone(),
            ..Facts::default()
        }
    }

    pub fn of_plan(p: &RecurringPlan) -> Self {
        let found = check_plan(
            0,
            p,
            p.supporter_id.map(|_| true),
            CampaignRef::NotLinked,
            NEVER_FUTURE,
        );
        Facts {
            id: p.id,
            rules: bits(found.into_iter().map(|f| f.rule)),
            latest: latest(&[p.started_at, p.created_at, Some(p.updated_at)]),
            supporter: p.supporter_id,
            campaign: p.campaign_id,
            currency: p.currency_code.clone(),
            ..Facts::default()
        }
    }

    /// The rules the record breaks as of `now`, given which supporters are stored and the
    /// stored campaigns with their currencies (each rule once; a record breaks each at most
    /// once).
    pub fn rules_at(
        &self,
        now: i64,
        supporter_known: impl Fn(u64) -> bool,
        campaigns: &HashMap<u64, Option<String>>,
    ) -> Vec<Rule> {
        let mut b = self.rules;
        if self.latest.is_some_and(|l| l > now + SKEW) {
            b |= bit(Rule::DateFuture);
        }
        if self.supporter.is_some_and(|s| !supporter_known(s)) {
            b |= bit(Rule::UnknownSupporter);
        }
        if let Some(c) = self.campaign {
            match campaigns.get(&c) {
                None => b |= bit(Rule::UnknownCampaign),
                Some(Some(theirs)) => {
                    if self
                        .currency
                        .as_deref()
                        .is_some_and(|own| !own.trim().eq_ignore_ascii_case(theirs.trim()))
                    {
                        b |= bit(Rule::CurrencyMismatch);
                    }
                }
                Some(None) => {}
            }
        }
        ALL_RULES
            .iter()
            .enumerate()
            .filter(|(k, _)| b & (1 << k) != 0)
            .map(|(_, r)| *r)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quality::rules::EARLIEST;

    fn ts(t: i64) -> Timestamp {
        Timestamp::from_unix(t)
    }

    fn sorted(mut v: Vec<Rule>) -> Vec<Rule> {
        v.sort();
        v
    }

    /// Varied transactions: the rules from facts equal the full check's, at several nows,
    /// with and without their supporter and campaign stored.
    #[test]
    fn facts_give_the_rules_of_the_full_check() {
        let now = 1_750_000_000;
        let mut rng = fastrand::Rng::with_seed(5);
        let dates = [
            None,
            Some(EARLIEST - 10),
            Some(now - 100),
            Some(now + 2 * SKEW),
        ];
        let amounts = [None, Some(-1.0), Some(10.0), Some(12.5)];
        let currencies = [None, Some("USD"), Some(" usd "), Some("EUR")];
        let mut campaigns = HashMap::new();
        campaigns.insert(1, Some("USD".to_string()));
        campaigns.insert(2, None);
        for _ in 0..3000 {
            let t = Transaction {
                id: rng.u64(1..1000),
                supporter_id: [None, Some(5), Some(6)][rng.usize(..3)],
                campaign_id: [None, Some(1), Some(2), Some(3)][rng.usize(..4)],
                recurring_donation_plan_id: None,
                total_gross_amount: amounts[rng.usize(..4)],
                donation_gross_amount: amounts[rng.usize(..4)],
                donation_net_amount: amounts[rng.usize(..4)],
                fees_amount: amounts[rng.usize(..4)],
                currency_code: currencies[rng.usize(..4)].map(str::to_string),
                status: [None, Some("success".to_string())][rng.usize(..2)].clone(),
                frequency: None,
                payment_method: None,
                purchased_at: dates[rng.usize(..4)].map(ts),
                refunded_at: dates[rng.usize(..4)].map(ts),
                created_at: dates[rng.usize(..4)].map(ts),
                updated_at: ts(dates[rng.usize(1..4)].unwrap()),
            };
            let f = Facts::of_transaction(&t);
            for at in [now, now + 3 * SKEW, EARLIEST] {
                let known = |s: u64| s == 5;
                let campaign = match t.campaign_id {
                    None => CampaignRef::NotLinked,
                    Some(c) => match campaigns.get(&c) {
                        None => CampaignRef::Unknown,
                        Some(cur) => CampaignRef::Known {
                            currency: cur.as_deref(),
                        },
                    },
                };
                let full: Vec<Rule> =
                    check_transaction(0, &t, t.supporter_id.map(known), campaign, at)
                        .into_iter()
                        .map(|x| x.rule)
                        .collect();
                assert_eq!(
                    sorted(f.rules_at(at, known, &campaigns)),
                    sorted(full),
                    "{t:?}"
                );
            }
        }
        let s = Supporter {
            id: 9,
            first_name: Some("Ann".into()),
            last_name: None,
            email_address: Some("bad@".into()),
            opt_in: false,
            phone: None,
            address1: None,
            address2: None,
            city: None,
            state: None,
            postal_code: None,
            country: None,
            member_id: None,
            origin: None,
            created_at: Some(ts(now + 5 * SKEW)),
            updated_at: ts(now),
        };
        let f = Facts::of_supporter(&s);
        let full: Vec<Rule> = check_supporter(0, &s, now)
            .into_iter()
            .map(|x| x.rule)
            .collect();
        assert_eq!(sorted(f.rules_at(now, |_| true, &campaigns)), sorted(full));
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Facts>(&json).unwrap(), f);
    }
}
