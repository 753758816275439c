//! Supporters sharing an email address. Destinations keyed by address (Mailchimp) hold one
//! member per address, owned by the most recently updated supporter; telling them up front
//! which supporters are superseded lets a reconcile send each address once, instead of
//! creating a member for an older record and then handing it over (and removing its tags).

use super::sorter::ExternalSorter;
use super::Datastore;
use crate::domain::keys::org_pk;
use crate::domain::quality::duplicates::normalize_email;
use crate::domain::{Entity, OrgId, Supporter};
use crate::ports::store::{for_each_page, SkRange, StoreError};
use std::collections::HashSet;

/// Folds supporters grouped by address (in any order within a group) into the ids of those
/// a more recently updated supporter of the same address supersedes. Ties on the update
/// time go to the higher id, as everywhere else.
#[derive(Default)]
pub struct SupersededFold {
    address: Option<String>,
    group: Vec<(i64, u64)>,
    superseded: HashSet<u64>,
}

impl SupersededFold {
    pub fn add(&mut self, address: &str, updated_at: i64, id: u64) {
        if self.address.as_deref() != Some(address) {
            self.close_group();
            self.address = Some(address.to_string());
        }
        self.group.push((updated_at, id));
    }

    fn close_group(&mut self) {
        if let Some(newest) = self.group.iter().max().copied() {
            self.superseded
                .extend(self.group.iter().filter(|g| **g != newest).map(|g| g.1));
        }
        self.group.clear();
    }

    pub fn finish(mut self) -> HashSet<u64> {
        self.close_group();
        self.superseded
    }
}

impl Datastore {
    /// Ids of the organization's supporters whose address a more recently updated supporter
    /// shares. One pass over the supporters and an external sort by address: memory is the
    /// sort chunk plus the superseded ids (a few per cent of supporters).
    pub async fn superseded_supporters(&self, org: OrgId) -> Result<HashSet<u64>, StoreError> {
        let mut sorter = ExternalSorter::new(self.options.sort_chunk);
        for_each_page(
            self.store.as_ref(),
            &org_pk(org),
            &SkRange::prefix(Entity::Supporters.sk_prefix()),
            self.options.scan_page,
            |items| {
                for item in items {
                    let s: Supporter = item.parse()?;
                    let Some(address) = s.email_address.as_deref().map(normalize_email) else {
                        continue;
                    };
                    // Sort keys cannot hold tabs or newlines; such an address is never sent.
                    if address.is_empty() || address.contains(['\t', '\n']) {
                        continue;
                    }
                    sorter
                        .push(address, format!("{} {}", s.updated_at.unix(), s.id))
                        .map_err(sort_error)?;
                }
                Ok(())
            },
        )
        .await?;
        let mut fold = SupersededFold::default();
        for pair in sorter.finish().map_err(sort_error)? {
            let (address, value) = pair.map_err(sort_error)?;
            let parsed = value
                .split_once(' ')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.parse::<u64>().ok()?)));
            if let Some((updated_at, id)) = parsed {
                fold.add(&address, updated_at, id);
            }
        }
        Ok(fold.finish())
    }
}

fn sort_error(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("sorting supporters by address: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_but_the_newest_of_each_address_are_superseded() {
        let mut f = SupersededFold::default();
        f.add("a@x.org", 10, 1);
        f.add("a@x.org", 30, 2);
        f.add("a@x.org", 20, 3);
        f.add("b@x.org", 5, 4);
        // Same update time: the higher id wins.
        f.add("c@x.org", 7, 9);
        f.add("c@x.org", 7, 6);
        assert_eq!(f.finish(), HashSet::from([1, 3, 6]));
    }
}
