//! What a push holds back so that every Mailchimp call carries a full load: member changes
//! until a 500-member batch is full (across change sets), and tag removals until a tag has
//! a full call's worth of members (or the run ends). Pure bookkeeping, no I/O.
//!
//! A member whose batch was acknowledged but whose tag removals are still held is stored
//! with those tags still set (so a crash in between only repeats the removal), and its
//! final state waits here until every removal was answered.

use super::member::{MemberChange, MemberState};
use indexmap::IndexMap;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A member whose batch was acknowledged and whose tags are still to be removed.
#[derive(Debug, Clone, PartialEq)]
struct Awaiting {
    state: MemberState,
    tags_left: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Pending {
    /// Held member changes by member hash, in arrival order (one per member).
    changes: IndexMap<String, MemberChange>,
    /// Tag → members (hash → address) to remove it from.
    removals: BTreeMap<String, BTreeMap<String, String>>,
    awaiting: HashMap<String, Awaiting>,
}

impl Pending {
    pub fn held(&self, hash: &str) -> Option<&MemberChange> {
        self.changes.get(hash)
    }

    /// Holds a change; a change already held for the member is replaced.
    pub fn hold(&mut self, change: MemberChange) {
        let hash = change.desired.hash.clone();
        // Acknowledged earlier in this run with removals still queued (another supporter
        // of the same address): the new change was planned from the state stored meanwhile,
        // tags still set, so it carries every removal still wanted. The queued ones go,
        // or they could take a tag the new owner wants, and a stale final state with them.
        if self.awaiting.remove(&hash).is_some() {
            for queue in self.removals.values_mut() {
                queue.remove(&hash);
            }
            self.removals.retain(|_, queue| !queue.is_empty());
        }
        self.changes.insert(hash, change);
    }

    /// Forgets a held change (the member needs none after all).
    pub fn release(&mut self, hash: &str) {
        self.changes.shift_remove(hash);
    }

    pub fn held_count(&self) -> usize {
        self.changes.len()
    }

    /// Held changes that set the member's status (`changes_status`), or that leave it alone:
    /// the two go in different batches (with and without `update_existing`).
    pub fn held_count_of(&self, changes_status: bool) -> usize {
        self.changes
            .values()
            .filter(|c| c.changes_status() == changes_status)
            .count()
    }

    /// The oldest `n` held changes of one kind ([`Self::held_count_of`]).
    pub fn take_of(&mut self, changes_status: bool, n: usize) -> Vec<MemberChange> {
        let mut out = Vec::with_capacity(n.min(self.changes.len()));
        let mut kept = IndexMap::with_capacity(self.changes.len());
        for (hash, c) in self.changes.drain(..) {
            if out.len() < n && c.changes_status() == changes_status {
                out.push(c);
            } else {
                kept.insert(hash, c);
            }
        }
        self.changes = kept;
        out
    }

    /// Records an acknowledged member whose `remove` tags are still to go. Returns the state
    /// to store meanwhile: the final one with those tags still set.
    pub fn await_removal(
        &mut self,
        hash: &str,
        state: MemberState,
        remove: &[String],
    ) -> MemberState {
        let mut interim = state.clone();
        for t in remove {
            if !interim.tags.contains(t) {
                interim.tags.push(t.clone());
            }
            self.removals
                .entry(t.clone())
                .or_default()
                .insert(hash.to_string(), state.email.clone());
        }
        self.awaiting.insert(
            hash.to_string(),
            Awaiting {
                state,
                tags_left: remove.iter().cloned().collect(),
            },
        );
        interim
    }

    pub fn awaiting_count(&self) -> usize {
        self.awaiting.len()
    }

    /// Tags with at least `min` members waiting (`min` 1: every tag with any).
    pub fn removal_tags(&self, min: usize) -> Vec<String> {
        self.removals
            .iter()
            .filter(|(_, m)| !m.is_empty() && m.len() >= min.max(1))
            .map(|(t, _)| t.clone())
            .collect()
    }

    pub fn removal_len(&self, tag: &str) -> usize {
        self.removals.get(tag).map_or(0, BTreeMap::len)
    }

    /// Up to `n` members (hash, address) to remove `tag` from, taken off the queue.
    pub fn take_removals(&mut self, tag: &str, n: usize) -> Vec<(String, String)> {
        let Some(queue) = self.removals.get_mut(tag) else {
            return Vec::new();
        };
        let keys: Vec<String> = queue.keys().take(n).cloned().collect();
        let out = keys
            .into_iter()
            .filter_map(|k| queue.remove_entry(&k))
            .collect();
        if queue.is_empty() {
            self.removals.remove(tag);
        }
        out
    }

    /// Mailchimp answered the removal of `tag` from the member (`removed` false: it refused,
    /// so the tag is remembered as set and removed again later). Returns the member's final
    /// state once nothing is left to remove.
    pub fn removal_answered(
        &mut self,
        hash: &str,
        tag: &str,
        removed: bool,
    ) -> Option<(String, MemberState)> {
        let a = self.awaiting.get_mut(hash)?;
        a.tags_left.remove(tag);
        if !removed && !a.state.tags.iter().any(|t| t == tag) {
            a.state.tags.push(tag.to_string());
        }
        if !a.tags_left.is_empty() {
            return None;
        }
        self.awaiting.remove_entry(hash).map(|(h, a)| (h, a.state))
    }
}

#[cfg(test)]
mod tests {
    use super::super::member::{ChangeKind, DesiredMember, KnownStatus};
    use super::*;
    use crate::mailchimp_api::subscriber_hash;
    use classy_sync_core::domain::Timestamp;

    fn change(email: &str, updated: &str) -> MemberChange {
        MemberChange {
            desired: DesiredMember {
                supporter: 1,
                hash: subscriber_hash(email),
                email: email.into(),
                consent: true,
                merge_fields: Default::default(),
                tags: vec!["Major Donor".into()],
                updated_at: Timestamp::parse(updated).unwrap(),
            },
            kind: ChangeKind::Create,
            status: Some(KnownStatus::Subscribed),
            remove_tags: vec!["Lapsed".into(), "Lost".into()],
            previous: None,
        }
    }

    #[test]
    fn changes_are_held_once_per_member_and_taken_oldest_first() {
        let mut p = Pending::default();
        p.hold(change("a@x.org", "2025-01-01T00:00:00Z"));
        p.hold(change("b@x.org", "2025-01-01T00:00:00Z"));
        p.hold(change("a@x.org", "2025-02-01T00:00:00Z"));
        assert_eq!(p.held_count(), 2);
        let hash_a = subscriber_hash("a@x.org");
        assert_eq!(
            p.held(&hash_a).unwrap().desired.updated_at,
            Timestamp::parse("2025-02-01T00:00:00Z").unwrap()
        );
        let mut keep = change("c@x.org", "2025-01-01T00:00:00Z");
        keep.status = None;
        p.hold(keep);
        assert_eq!((p.held_count_of(true), p.held_count_of(false)), (2, 1));
        let first = p.take_of(true, 1);
        assert_eq!(first[0].desired.email, "a@x.org");
        let kept = p.take_of(false, 5);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].desired.email, "c@x.org");
        p.release(&subscriber_hash("b@x.org"));
        assert_eq!(p.held_count(), 0);
    }

    #[test]
    fn a_new_change_for_a_member_awaiting_removals_replaces_them() {
        let mut p = Pending::default();
        let c = change("a@x.org", "2025-01-01T00:00:00Z");
        p.await_removal(&c.desired.hash, c.acknowledged(), &c.remove_tags);
        p.hold(change("a@x.org", "2025-02-01T00:00:00Z"));
        assert!(p.removal_tags(1).is_empty());
        assert_eq!(p.awaiting_count(), 0);
        assert!(p
            .removal_answered(&c.desired.hash, "Lapsed", true)
            .is_none());
        assert_eq!(p.held_count(), 1);
    }

    #[test]
    fn a_member_is_final_only_after_every_removal_was_answered() {
        let mut p = Pending::default();
        let c = change("a@x.org", "2025-01-01T00:00:00Z");
        let interim = p.await_removal(&c.desired.hash, c.acknowledged(), &c.remove_tags);
        assert_eq!(interim.tags, ["Major Donor", "Lapsed", "Lost"]);
        assert_eq!(p.removal_tags(1), ["Lapsed", "Lost"]);
        assert!(p.removal_tags(2).is_empty());
        let lapsed = p.take_removals("Lapsed", 500);
        assert_eq!(lapsed, [(c.desired.hash.clone(), "a@x.org".to_string())]);
        assert!(p
            .removal_answered(&c.desired.hash, "Lapsed", true)
            .is_none());
        p.take_removals("Lost", 500);
        // Refused: the tag stays remembered as set.
        let (hash, state) = p.removal_answered(&c.desired.hash, "Lost", false).unwrap();
        assert_eq!(hash, c.desired.hash);
        assert_eq!(state.tags, ["Major Donor", "Lost"]);
        assert_eq!(p.awaiting_count(), 0);
        assert!(p.removal_tags(1).is_empty());
    }
}
