//! The organization registry: `ORG#<id>/META` holds the organization, and a pointer copy in
//! the `ORGS` partition lists them all in one query. Both change in one transaction.

use super::{Datastore, EngineError};
use crate::domain::keys::{org_list_sk as list_sk, org_pk, META_SK, ORGS_PK, ORG_LIST_PREFIX};
use crate::domain::organization::classy_secret_name;
use crate::domain::{Entity, OrgId, OrgStatus, Organization};
use crate::ports::store::{parse_all, Condition, Item, SkRange, WriteOp};
use crate::ports::{AppCredentials, SecretStore};
use secrecy::{ExposeSecret, SecretString};

impl Datastore {
    /// Onboards an organization: its credential goes to the secret store first, so an
    /// organization is never listed without one.
    pub async fn add_org(
        &self,
        secrets: &dyn SecretStore,
        id: OrgId,
        name: &str,
        client_id: &str,
        client_secret: SecretString,
    ) -> Result<Organization, EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::Invalid("--name must not be empty".into()));
        }
        if client_id.trim().is_empty() {
            return Err(EngineError::Invalid("--client-id must not be empty".into()));
        }
        if self.store.get(&org_pk(id), META_SK).await?.is_some() {
            return Err(EngineError::OrgExists(id));
        }
        secrets.put(&classy_secret_name(id), client_secret).await?;
        let org = Organization {
            id,
            name: name.trim().to_string(),
            client_id: client_id.trim().to_string(),
            status: OrgStatus::Enabled,
            schedule: Default::default(),
            created_at: self.clock.now().to_rfc3339(),
            timezone: None,
        };
        let meta = Item::json(org_pk(id), META_SK, &org).with_version(1);
        let pointer = Item::json(ORGS_PK, list_sk(id), &org).with_version(1);
        self.store
            .transact(vec![
                (WriteOp::Put(meta), Condition::NotExists),
                (WriteOp::Put(pointer), Condition::Always),
            ])
            .await
            .map_err(|e| {
                if e.is_condition_failed() {
                    EngineError::OrgExists(id)
                } else {
                    e.into()
                }
            })?;
        Ok(org)
    }

    pub async fn get_org(&self, id: OrgId) -> Result<Organization, EngineError> {
        let item = self
            .store
            .get(&org_pk(id), META_SK)
            .await?
            .ok_or(EngineError::UnknownOrg(id))?;
        Ok(item.parse()?)
    }

    pub async fn list_orgs(&self) -> Result<Vec<Organization>, EngineError> {
        Ok(parse_all(
            self.store.as_ref(),
            ORGS_PK,
            &SkRange::prefix(ORG_LIST_PREFIX),
            500,
        )
        .await?)
    }

    pub async fn set_org_status(
        &self,
        id: OrgId,
        status: OrgStatus,
    ) -> Result<Organization, EngineError> {
        self.update_org(id, |o| o.status = status).await
    }

    /// Overrides one entity's sync interval (`None` restores the default).
    pub async fn set_org_interval(
        &self,
        id: OrgId,
        entity: Entity,
        secs: Option<u64>,
    ) -> Result<Organization, EngineError> {
        if secs == Some(0) {
            return Err(EngineError::Invalid(
                "interval must be at least 1 second".into(),
            ));
        }
        self.update_org(id, |o| match secs {
            Some(s) => {
                o.schedule.insert(entity, s);
            }
            None => {
                o.schedule.remove(&entity);
            }
        })
        .await
    }

    /// Read-modify-write with optimistic concurrency on the META item.
    async fn update_org(
        &self,
        id: OrgId,
        change: impl Fn(&mut Organization),
    ) -> Result<Organization, EngineError> {
        loop {
            let item = self
                .store
                .get(&org_pk(id), META_SK)
                .await?
                .ok_or(EngineError::UnknownOrg(id))?;
            let mut org: Organization = item.parse()?;
            change(&mut org);
            let v = item.version;
            let meta = Item::json(org_pk(id), META_SK, &org).with_version(v + 1);
            let pointer = Item::json(ORGS_PK, list_sk(id), &org).with_version(v + 1);
            match self
                .store
                .transact(vec![
                    (WriteOp::Put(meta), Condition::VersionIs(v)),
                    (WriteOp::Put(pointer), Condition::Always),
                ])
                .await
            {
                Ok(()) => return Ok(org),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The Classy credentials an organization is read with.
pub async fn app_credentials(
    secrets: &dyn SecretStore,
    org: &Organization,
) -> Result<AppCredentials, EngineError> {
    let secret = secrets.get(&org.classy_secret_name()).await?;
    Ok(AppCredentials {
        client_id: org.client_id.clone(),
        client_secret: secret,
    })
}

/// The organization's credential read past any cache, when it differs from `used` (a
/// rotation replaced it after `used` was read); `None` when it is the same or unreadable.
pub async fn rotated_credentials(
    secrets: &dyn SecretStore,
    org: &Organization,
    used: &AppCredentials,
) -> Option<AppCredentials> {
    let fresh = secrets.get_fresh(&org.classy_secret_name()).await.ok()?;
    (fresh.expose_secret() != used.client_secret.expose_secret()).then(|| AppCredentials {
        client_id: org.client_id.clone(),
        client_secret: fresh,
    })
}
