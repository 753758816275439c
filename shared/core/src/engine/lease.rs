//! A lease per organization×entity so two syncs of the same pair never overlap, across
//! processes and Lambda containers. A conditional put takes it; every page renews it; an
//! expired lease (or, locally, one whose holder process is gone) can be taken over.

use super::{EngineError, SyncService};
use crate::domain::keys::{lease_sk, org_pk, slice_lease_sk};
use crate::domain::{Entity, OrgId, Timestamp};
use crate::ports::store::{Condition, Item};
use crate::ports::HolderLiveness;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    pub owner: String,
    pub host: String,
    pub pid: u32,
}

#[derive(Debug)]
pub struct Lease {
    pub org: OrgId,
    pub entity: Entity,
    pub owner: String,
    version: u64,
    /// The pair's lease, or one slice's (`SLICELEASE#<entity>#<index>`).
    sk: String,
}

/// Who takes a lease: `owner` in this process on this host.
pub(crate) fn lease_holder(liveness: &dyn HolderLiveness, owner: String) -> LeaseHolder {
    LeaseHolder {
        owner,
        host: liveness.host(),
        pid: std::process::id(),
    }
}

/// A holder whose process is known to be gone cannot be syncing.
pub(crate) fn holder_is_gone(liveness: &dyn HolderLiveness, h: &LeaseHolder) -> bool {
    !h.host.is_empty() && h.pid != std::process::id() && liveness.is_gone(&h.host, h.pid)
}

impl SyncService {
    pub async fn acquire_lease(
        &self,
        org: OrgId,
        entity: Entity,
        owner: &str,
    ) -> Result<Lease, EngineError> {
        self.acquire_lease_at(org, entity, lease_sk(entity), owner)
            .await
    }

    /// The lease of one slice of a sliced full sync worked by several workers: one worker
    /// per slice (the pair's lease is not held meanwhile).
    pub async fn acquire_slice_lease(
        &self,
        org: OrgId,
        entity: Entity,
        index: u32,
        owner: &str,
    ) -> Result<Lease, EngineError> {
        self.acquire_lease_at(org, entity, slice_lease_sk(entity, index), owner)
            .await
    }

    async fn acquire_lease_at(
        &self,
        org: OrgId,
        entity: Entity,
        sk: String,
        owner: &str,
    ) -> Result<Lease, EngineError> {
        let pk = org_pk(org);
        let holder = lease_holder(self.liveness.as_ref(), owner.to_string());
        let now = self.data.clock.unix();
        let expires = now + self.data.options.lease_ttl.as_secs() as i64;
        let existing = self.data.store.get(&pk, &sk).await?;
        let (cond, version) = match &existing {
            None => (Condition::NotExists, 1),
            Some(item) => {
                let expired = item.expires_at.is_none_or(|t| t < now);
                let dead = item
                    .parse::<LeaseHolder>()
                    .is_ok_and(|h| holder_is_gone(self.liveness.as_ref(), &h));
                if !(expired || dead) {
                    let until = Timestamp::from_unix(item.expires_at.unwrap_or(now)).to_rfc3339();
                    return Err(EngineError::LeaseHeld { org, entity, until });
                }
                (Condition::VersionIs(item.version), item.version + 1)
            }
        };
        let item = Item::json(&pk, &sk, &holder)
            .with_version(version)
            .with_expiry(expires);
        match self.data.store.put(item, cond).await {
            Ok(()) => Ok(Lease {
                org,
                entity,
                owner: owner.to_string(),
                version,
                sk,
            }),
            Err(e) if e.is_condition_failed() => Err(EngineError::LeaseHeld {
                org,
                entity,
                until: "a moment from now".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Extends the lease; fails with `LeaseLost` if someone took it over.
    pub async fn renew_lease(&self, lease: &mut Lease) -> Result<(), EngineError> {
        let holder = lease_holder(self.liveness.as_ref(), lease.owner.clone());
        let expires = self.data.clock.unix() + self.data.options.lease_ttl.as_secs() as i64;
        let item = Item::json(org_pk(lease.org), lease.sk.clone(), &holder)
            .with_version(lease.version + 1)
            .with_expiry(expires);
        match self
            .data
            .store
            .put(item, Condition::VersionIs(lease.version))
            .await
        {
            Ok(()) => {
                lease.version += 1;
                Ok(())
            }
            Err(e) if e.is_condition_failed() => Err(EngineError::LeaseLost {
                org: lease.org,
                entity: lease.entity,
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn release_lease(&self, lease: Lease) -> Result<(), EngineError> {
        match self
            .data
            .store
            .delete(
                &org_pk(lease.org),
                &lease.sk,
                Condition::VersionIs(lease.version),
            )
            .await
        {
            Ok(()) => Ok(()),
            // Someone took it over after it expired: theirs now, nothing to release.
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
