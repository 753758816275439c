//! When an organization×entity is due: its interval (default or override) after the last
//! successful run, pushed back by failure backoff.

use super::{Entity, Organization};
use std::time::Duration;

/// Backoff after consecutive failures: 5, 10, 20 minutes, then capped at 20.
pub fn failure_backoff(consecutive_failures: u32) -> Duration {
    match consecutive_failures {
        0 => Duration::ZERO,
        n => Duration::from_secs(5 * 60 * (1u64 << (n - 1).min(2))),
    }
}

pub fn interval(org: &Organization, entity: Entity) -> Duration {
    org.schedule
        .get(&entity)
        .map(|s| Duration::from_secs(*s))
        .unwrap_or_else(|| entity.default_interval())
}

/// Whether a sync should start now. `last_success` / `last_failure` are unix seconds.
pub fn is_due(
    org: &Organization,
    entity: Entity,
    now: i64,
    last_success: Option<i64>,
    last_failure: Option<i64>,
    consecutive_failures: u32,
) -> bool {
    if !org.is_enabled() {
        return false;
    }
    if let Some(failed) = last_failure.filter(|_| consecutive_failures > 0) {
        if now < failed + failure_backoff(consecutive_failures).as_secs() as i64 {
            return false;
        }
        return true;
    }
    match last_success {
        None => true,
        Some(t) => now >= t + interval(org, entity).as_secs() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrgStatus;

    fn org() -> Organization {
        Organization {
            id: 1,
            name: "x".into(),
            client_id: "c".into(),
            status: OrgStatus::Enabled,
            schedule: [(Entity::Campaigns, 120)].into_iter().collect(),
            created_at: String::new(),
            timezone: None,
        }
    }

    #[test]
    fn never_synced_is_due_and_intervals_apply() {
        let o = org();
        assert!(is_due(&o, Entity::Supporters, 1000, None, None, 0));
        assert!(!is_due(
            &o,
            Entity::Supporters,
            1000 + 29 * 60,
            Some(1000),
            None,
            0
        ));
        assert!(is_due(
            &o,
            Entity::Supporters,
            1000 + 30 * 60,
            Some(1000),
            None,
            0
        ));
        assert!(
            is_due(&o, Entity::Campaigns, 1120, Some(1000), None, 0),
            "override of 120 s"
        );
    }

    #[test]
    fn failures_back_off_5_10_20_minutes() {
        assert_eq!(failure_backoff(1).as_secs(), 300);
        assert_eq!(failure_backoff(2).as_secs(), 600);
        assert_eq!(failure_backoff(3).as_secs(), 1200);
        assert_eq!(failure_backoff(9).as_secs(), 1200);
        let o = org();
        assert!(!is_due(
            &o,
            Entity::Transactions,
            1000 + 599,
            Some(0),
            Some(1000),
            2
        ));
        assert!(is_due(
            &o,
            Entity::Transactions,
            1000 + 600,
            Some(0),
            Some(1000),
            2
        ));
    }

    #[test]
    fn disabled_is_never_due() {
        let mut o = org();
        o.status = OrgStatus::Disabled;
        assert!(!is_due(&o, Entity::Supporters, 10_000, None, None, 0));
    }
}
