//! Tenant operations in the engine, where failures can be made to happen: an import that
//! fails midway is undone, a purge that dies halfway is finished by running it again, and a
//! warm process (a Lambda container with a cached secret) picks up a rotated credential.

use async_trait::async_trait;
use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::organization::classy_secret_name;
use classy_sync_core::domain::{Entity, OrgStatus, Organization};
use classy_sync_core::engine::tenants::{ApplyError, OrgWrite, SecretWrite};
use classy_sync_core::engine::{Datastore, RunControl, SyncMode, SyncOutcome, SyncService};
use classy_sync_core::ports::store::{Condition, Item, Page, SkRange, WriteOp};
use classy_sync_core::ports::{SecretError, SecretStore, Store, StoreError};
use classy_sync_tests::Harness;
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A store that fails on purpose: the `fail_transact_at`-th transaction (1-based), and the
/// first `delete_range` after deleting `crash_after` items.
struct Failing {
    inner: Arc<dyn Store>,
    transacts: AtomicUsize,
    fail_transact_at: usize,
    crash_after: Option<usize>,
    crashed: AtomicUsize,
}

impl Failing {
    fn new(inner: Arc<dyn Store>, fail_transact_at: usize, crash_after: Option<usize>) -> Self {
        Failing {
            inner,
            transacts: AtomicUsize::new(0),
            fail_transact_at,
            crash_after,
            crashed: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Store for Failing {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn batch_get(&self, pk: &str, sks: &[String]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(pk, sks).await
    }
    async fn put(&self, item: Item, cond: Condition) -> Result<(), StoreError> {
        self.inner.put(item, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> Result<(), StoreError> {
        self.inner.delete(pk, sk, cond).await
    }
    async fn query(
        &self,
        pk: &str,
        range: &SkRange,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.inner.query(pk, range, start_after, limit).await
    }
    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.batch_write(ops).await
    }
    async fn transact(&self, ops: Vec<(WriteOp, Condition)>) -> Result<(), StoreError> {
        let n = self.transacts.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_transact_at {
            return Err(StoreError::Unavailable(
                "injected: the store went away".into(),
            ));
        }
        self.inner.transact(ops).await
    }
    async fn query_gsi1(&self, key: &str, limit: usize) -> Result<Vec<Item>, StoreError> {
        self.inner.query_gsi1(key, limit).await
    }
    async fn delete_range(&self, pk: &str, range: &SkRange) -> Result<u64, StoreError> {
        if let Some(n) = self.crash_after {
            if self.crashed.fetch_add(1, Ordering::SeqCst) == 0 {
                let page = self.inner.query(pk, range, None, n).await?;
                let ops = page
                    .items
                    .into_iter()
                    .map(|i| WriteOp::Delete { pk: i.pk, sk: i.sk })
                    .collect();
                self.inner.batch_write(ops).await?;
                return Err(StoreError::Unavailable("injected: the process died".into()));
            }
        }
        self.inner.delete_range(pk, range).await
    }
}

fn new_org(id: u64) -> Organization {
    Organization {
        id,
        name: format!("Org {id}"),
        client_id: "app".into(),
        status: OrgStatus::Enabled,
        schedule: Default::default(),
        created_at: "2026-12-01T00:00:00Z".into(),
        timezone: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_fails_midway_undoes_everything_it_wrote() {
    let h = Harness::start(SandboxConfig {
        orgs: 1,
        supporters: 5,
        transactions: 5,
        plans: 1,
        campaigns: 1,
        ..SandboxConfig::default()
    })
    .await;
    let existing = h.orgs[0];
    let secrets = h.root.secrets.clone();
    let old_secret = secrets.get(&classy_secret_name(existing)).await.unwrap();
    let before = h.data.orgs_with_versions(&[existing]).await.unwrap()[&existing].clone();

    // 120 new organizations and one update: three transactions of 50; the third fails.
    let failing = Datastore::new(
        Arc::new(Failing::new(h.data.store.clone(), 3, None)),
        h.data.clock.clone(),
    );
    let mut writes: Vec<OrgWrite> = (1..=120)
        .map(|i| OrgWrite {
            before: None,
            after: new_org(900_000 + i),
        })
        .collect();
    let mut renamed = before.0.clone();
    renamed.name = "Renamed".into();
    writes.insert(
        0,
        OrgWrite {
            before: Some(before.clone()),
            after: renamed,
        },
    );
    let new_secrets: Vec<SecretWrite> = writes
        .iter()
        .map(|w| SecretWrite {
            name: classy_secret_name(w.after.id),
            value: SecretString::from(format!("new-{}", w.after.id)),
        })
        .collect();
    let progress = AtomicUsize::new(0);
    let err = failing
        .apply_org_writes(secrets.as_ref(), writes, new_secrets, &|n| {
            progress.store(n, Ordering::SeqCst)
        })
        .await
        .err()
        .expect("the third transaction fails");
    assert!(matches!(err, ApplyError::Undone { .. }), "{err}");
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(
        progress.load(Ordering::SeqCst),
        100,
        "two chunks were written first"
    );

    // Nothing of it is left: the organization list, the metas, the secrets as before.
    let listed = h.data.list_orgs().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, before.0.name);
    assert_eq!(h.data.get_org(existing).await.unwrap().name, before.0.name);
    for i in 1..=120u64 {
        assert!(h.data.get_org(900_000 + i).await.is_err());
        assert!(matches!(
            secrets.get(&classy_secret_name(900_000 + i)).await,
            Err(SecretError::NotFound(_))
        ));
    }
    assert_eq!(
        secrets
            .get(&classy_secret_name(existing))
            .await
            .unwrap()
            .expose_secret(),
        old_secret.expose_secret()
    );
    // The undone organization still syncs with its old credential.
    let r = h
        .sync
        .sync_entity(
            existing,
            Entity::Campaigns,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_dies_halfway_is_finished_by_running_it_again() {
    let h = Harness::start(SandboxConfig {
        orgs: 2,
        supporters: 200,
        transactions: 300,
        plans: 20,
        campaigns: 3,
        ..SandboxConfig::default()
    })
    .await;
    let (doomed, kept) = (h.orgs[0], h.orgs[1]);
    for org in [doomed, kept] {
        for r in h
            .sync
            .sync_org(org, SyncMode::Full, &RunControl::default())
            .await
        {
            assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
        }
    }
    let counts_kept = h.data.org_item_counts(kept).await.unwrap();
    let total: u64 = h.data.org_item_counts(doomed).await.unwrap().values().sum();
    assert!(total > 500, "{total}");

    // The process dies after deleting 100 items.
    let crashing = Datastore::new(
        Arc::new(Failing::new(h.data.store.clone(), usize::MAX, Some(100))),
        h.data.clock.clone(),
    );
    let secrets = h.root.secrets.clone();
    let err = crashing
        .purge_org(secrets.as_ref(), doomed, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert!(h.data.purge_pending(doomed).await.unwrap());
    let left: u64 = h.data.org_item_counts(doomed).await.unwrap().values().sum();
    assert_eq!(left, total - 100);
    assert!(matches!(
        secrets.get(&classy_secret_name(doomed)).await,
        Err(SecretError::NotFound(_))
    ));

    // Run again: it finishes, and nothing of the organization is left.
    let report = h
        .data
        .purge_org(secrets.as_ref(), doomed, vec![])
        .await
        .unwrap();
    assert_eq!(report.items, total - 100);
    assert!(!h.data.purge_pending(doomed).await.unwrap());
    let page = h
        .data
        .store
        .query(&format!("ORG#{doomed}"), &SkRange::All, None, 10)
        .await
        .unwrap();
    assert!(page.items.is_empty(), "{:?}", page.items);
    assert!(h.data.get_org(doomed).await.is_err());
    assert_eq!(
        h.data
            .list_orgs()
            .await
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect::<Vec<_>>(),
        vec![kept]
    );
    // The other organization is untouched.
    assert_eq!(h.data.org_item_counts(kept).await.unwrap(), counts_kept);
    // A third time: there is nothing left to purge.
    assert!(h
        .data
        .purge_org(secrets.as_ref(), doomed, vec![])
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_process_with_a_cached_secret_picks_up_a_rotation_at_once() {
    use classy_sync_aws::SecretsManagerStore;
    use classy_sync_tests::moto::MotoServer;
    use std::time::Duration;

    let h = Harness::start(SandboxConfig {
        orgs: 1,
        supporters: 20,
        transactions: 20,
        plans: 2,
        campaigns: 1,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    let app = h.sandbox.apps()[0].clone();
    let moto = MotoServer::start();
    // The warm container's store caches for 5 minutes, as the Lambda functions do.
    let warm: Arc<dyn SecretStore> = Arc::new(SecretsManagerStore::new(
        moto.secrets_manager().await,
        Duration::from_secs(300),
    ));
    let operator = SecretsManagerStore::new(moto.secrets_manager().await, Duration::ZERO);
    warm.put(
        &classy_secret_name(org),
        SecretString::from(app.client_secret.clone()),
    )
    .await
    .unwrap();
    let sync = SyncService::new(h.data.clone(), Arc::new(h.client.clone()), warm.clone());
    let ctl = RunControl::default();
    let run = || sync.sync_entity(org, Entity::Supporters, SyncMode::Auto, &ctl);
    assert_eq!(run().await.unwrap().outcome, SyncOutcome::Succeeded);

    // The secret is regenerated and the operator rotates it (another process).
    let regenerated: serde_json::Value = h
        .http
        .post(h.admin(&format!("/apps/{}/secret", app.client_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = regenerated["client_secret"].as_str().unwrap().to_string();
    operator
        .put(&classy_secret_name(org), SecretString::from(new_secret))
        .await
        .unwrap();

    // The warm container's cache still holds the old secret, and its token was revoked:
    // the refused run re-reads the secret past the cache and succeeds.
    assert_eq!(
        warm.get(&classy_secret_name(org))
            .await
            .unwrap()
            .expose_secret(),
        app.client_secret,
        "the cache should still hold the old secret"
    );
    let r = run().await.unwrap();
    assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    assert!(r.error.is_none());
}
