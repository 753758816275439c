//! A large full sync split into id slices walked at once, against the sandbox over sockets:
//! it stores exactly what a single walker stores (the sandbox's truth, same counts, same
//! aggregates), a killed sliced sync resumes every slice where it was and finishes with
//! every record once in fewer pages than a restart, and under a request budget with
//! per-request latency it is faster than one walker.

use classy_sandbox::SandboxConfig;
use classy_sync_classy::ClassyClient;
use classy_sync_core::domain::budget::BudgetSpec;
use classy_sync_core::domain::keys::{org_pk, slice_prefix};
use classy_sync_core::domain::{Entity, OrgId};
use classy_sync_core::engine::budget::StoreBudget;
use classy_sync_core::engine::export::Row;
use classy_sync_core::engine::slices::SliceState;
use classy_sync_core::engine::{
    Datastore, RunControl, SyncMode, SyncOutcome, SyncReport, SyncService,
};
use classy_sync_core::ports::{RateBudget, SkRange, SystemClock};
use classy_sync_runtime::local::LocalRoot;
use classy_sync_tests::{assert_same_records, test_client_config, Harness};
use secrecy::SecretString;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A syncer over `root` with `slices` slices of at least `pages_per_slice` pages.
fn syncer(
    root: &LocalRoot,
    client: &ClassyClient,
    slices: u32,
    pages_per_slice: u64,
) -> SyncService {
    let mut s = root.sync(Arc::new(client.clone()));
    s.data.options.full_sync_slices = slices;
    s.data.options.pages_per_slice = pages_per_slice;
    s
}

/// Another data directory with the sandbox's organizations onboarded, as another
/// installation would have.
async fn second_root(h: &Harness) -> (tempfile::TempDir, LocalRoot) {
    let dir = tempfile::tempdir().unwrap();
    let root = LocalRoot::open(dir.path()).unwrap();
    for app in h.sandbox.apps() {
        for org in &app.organizations {
            root.data()
                .add_org(
                    root.secrets.as_ref(),
                    *org as u64,
                    &format!("Org {org}"),
                    &app.client_id,
                    SecretString::from(app.client_secret.clone()),
                )
                .await
                .unwrap();
        }
    }
    (dir, root)
}

async fn export(data: &Datastore, org: OrgId, entity: Entity) -> Vec<Row> {
    let mut rows = Vec::new();
    data.export(org, entity, |r| {
        rows.push(r);
        Ok(())
    })
    .await
    .unwrap();
    rows
}

async fn slices_stored(data: &Datastore, org: OrgId, entity: Entity) -> Vec<SliceState> {
    let page = data
        .store
        .query(
            &org_pk(org),
            &SkRange::prefix(slice_prefix(entity)),
            None,
            100,
        )
        .await
        .unwrap();
    page.items.iter().map(|i| i.parse().unwrap()).collect()
}

async fn full(s: &SyncService, org: OrgId, entity: Entity) -> SyncReport {
    let r = s
        .sync_entity(org, entity, SyncMode::Full, &RunControl::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    assert_eq!(r.mode, "full");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliced_full_sync_stores_what_one_walker_stores() {
    let h = Harness::start(SandboxConfig {
        seed: 11,
        orgs: 1,
        supporters: 2_500,
        campaigns: 8,
        transactions: 3_200,
        plans: 300,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    let single = syncer(&h.root, &h.client, 1, 50);
    let (_dir, other) = second_root(&h).await;
    let sliced = syncer(&other, &h.client, 4, 5);
    for entity in Entity::ALL {
        let one = full(&single, org, entity).await;
        let many = full(&sliced, org, entity).await;
        let truth = h.truth(org, entity).await;
        assert_same_records(entity, &truth, &export(&sliced.data, org, entity).await);
        assert_same_records(entity, &truth, &export(&single.data, org, entity).await);
        assert_eq!(
            (many.fetched, many.created, many.updated, many.unchanged),
            (one.fetched, one.created, 0, 0),
            "{entity}: sliced {many:?}, one walker {one:?}"
        );
        assert_eq!(many.fetched, truth.len() as u64, "{entity}");
        if truth.len() >= 1_000 {
            // Each slice but the last ends on a page it cuts: more pages, so it was sliced.
            assert!(many.pages > one.pages, "{entity}: {many:?} vs {one:?}");
        } else {
            assert_eq!(many.pages, one.pages, "{entity}: small, one walker");
        }
        assert!(
            slices_stored(&sliced.data, org, entity).await.is_empty(),
            "{entity}: slice items are deleted once the full sync commits"
        );
    }
    // Aggregates and every computed field agree too.
    for entity in [Entity::Supporters, Entity::Campaigns] {
        assert_eq!(
            export(&sliced.data, org, entity).await,
            export(&single.data, org, entity).await,
            "{entity} with aggregates"
        );
    }
    // And the next run is incremental from the committed position.
    let next = sliced
        .sync_entity(
            org,
            Entity::Transactions,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!((next.mode.as_str(), next.created), ("incremental", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sliced_full_sync_resumes_every_slice_where_it_was() {
    let h = Harness::start(SandboxConfig {
        seed: 12,
        orgs: 1,
        supporters: 300,
        campaigns: 5,
        transactions: 3_200,
        plans: 40,
        latency_ms: 50,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    let entity = Entity::Transactions;
    let total = h.truth(org, entity).await.len() as u64;
    let mut sync = syncer(&h.root, &h.client, 4, 5);
    sync.data.options.lease_ttl = Duration::from_secs(1);
    let fetched = Arc::new(AtomicU64::new(0));
    let seen = fetched.clone();
    let ctl = RunControl {
        progress: Some(Arc::new(move |p| seen.store(p.fetched, Ordering::SeqCst))),
        ..RunControl::default()
    };
    let run = {
        let sync = sync.clone();
        tokio::spawn(async move { sync.sync_entity(org, entity, SyncMode::Full, &ctl).await })
    };
    // Killed (the task dropped mid-walk, nothing written after) about halfway.
    while fetched.load(Ordering::SeqCst) < total / 2 {
        assert!(!run.is_finished(), "finished before it could be killed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    run.abort();
    let _ = run.await;
    let stored_before = h.stored(org, entity).await.len() as u64;
    let slices = slices_stored(&sync.data, org, entity).await;
    assert_eq!(slices.len(), 4, "{slices:?}");
    assert!(
        slices.iter().filter(|s| s.after_id > s.lo).count() >= 2,
        "slices walk at once: {slices:?}"
    );
    assert!(slices.iter().any(|s| !s.done), "{slices:?}");
    assert!(stored_before < total, "{stored_before} of {total}");
    let status = sync.data.status(Some(org)).await.unwrap();
    let pair = status.iter().find(|s| s.entity == entity).unwrap();
    assert_eq!(pair.resumable.as_deref(), Some("full in 4 slices"));

    // The lease of the killed run expires; the next run resumes.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let resumed = sync
        .sync_entity(org, entity, SyncMode::Auto, &RunControl::default())
        .await
        .unwrap();
    assert_eq!(resumed.outcome, SyncOutcome::Succeeded, "{resumed:?}");
    assert!(resumed.resumed && resumed.mode == "full", "{resumed:?}");
    h.assert_matches_truth(org, entity).await;
    // Every record once: what the killed run stored is not created again; at most the page
    // stored but not yet recorded in its slice is read twice.
    assert_eq!(resumed.created, total - stored_before, "{resumed:?}");
    assert!(resumed.unchanged <= 100, "{resumed:?}");
    let restart = total.div_ceil(100);
    assert!(
        resumed.pages < restart && resumed.api_calls < restart,
        "resumed in {} pages ({} calls); a restart reads {restart}",
        resumed.pages,
        resumed.api_calls
    );
    assert!(slices_stored(&sync.data, org, entity).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_budget_and_latency_a_sliced_full_sync_is_faster() {
    // 1,200 a minute, time scaled 10×.
    const PER_WINDOW: u32 = 120;
    const WINDOW_MS: u64 = 6_000;
    let h = Harness::start(SandboxConfig {
        seed: 13,
        orgs: 1,
        supporters: 3_000,
        campaigns: 5,
        transactions: 50,
        plans: 5,
        latency_ms: 200,
        ..SandboxConfig::default()
    })
    .await;
    h.put(
        "/rate-limit",
        json!({"per_minute": PER_WINDOW, "window_ms": WINDOW_MS}),
    )
    .await;
    let org = h.orgs[0];
    // A client spending the data directory's budget, as `classy-sync` does.
    let client = |root: &LocalRoot| {
        let budget: Arc<dyn RateBudget> = Arc::new(StoreBudget::new(
            root.store.clone(),
            Arc::new(SystemClock),
            BudgetSpec::new(PER_WINDOW, WINDOW_MS),
        ));
        let mut config = test_client_config(&h.sandbox);
        config.requests_per_minute = (u64::from(PER_WINDOW) * 60_000 / WINDOW_MS) as u32;
        ClassyClient::with_budget(config, budget).unwrap()
    };
    let single = syncer(&h.root, &client(&h.root), 1, 5);
    let (_dir, other) = second_root(&h).await;
    let sliced = syncer(&other, &client(&other), 4, 5);
    let one = full(&single, org, Entity::Supporters).await;
    let many = full(&sliced, org, Entity::Supporters).await;
    let c = h.counters().await;
    println!(
        "one walker: {} pages in {} ms; 4 slices: {} pages in {} ms; counters {c}",
        one.pages, one.duration_ms, many.pages, many.duration_ms
    );
    assert_eq!(many.created, one.created);
    assert_eq!(c["by_status"]["429"].as_u64().unwrap_or(0), 0, "{c}");
    // One walker waits for each answer (about 4 pages a second); four reach the budget's
    // refill rate (about 16 a second: what the burst and the hold leave of the window).
    assert!(
        many.duration_ms * 2 < one.duration_ms,
        "sliced {} ms, one walker {} ms",
        many.duration_ms,
        one.duration_ms
    );
    let spec = BudgetSpec::new(PER_WINDOW, WINDOW_MS);
    let at_budget_ms = (many.api_calls.saturating_sub(u64::from(spec.capacity)) as f64
        / spec.rate_per_ms()) as u64;
    println!("at the budget's rate: {at_budget_ms} ms");
    // Plus what goes one call at a time before the slices start: the token, the newest
    // record, the lowest and the highest id (4 × 200 ms), and slack.
    assert!(
        many.duration_ms < at_budget_ms + 1_500,
        "{} ms for {} calls; the budget allows them in {at_budget_ms} ms",
        many.duration_ms,
        many.api_calls
    );
}

/// Slices worked by separate jobs (as the AWS sync-worker does): when several find every
/// slice done at the same moment, exactly one commits; the others see it committed (or
/// their cursor write refused) and do nothing, and a job that comes later finds the run over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slice_jobs_finishing_together_commit_the_full_sync_once() {
    let h = Harness::start(SandboxConfig {
        seed: 13,
        orgs: 1,
        supporters: 2_500,
        campaigns: 4,
        transactions: 200,
        plans: 20,
        ..SandboxConfig::default()
    })
    .await;
    let org = h.orgs[0];
    let entity = Entity::Supporters;
    let sync = syncer(&h.root, &h.client, 4, 5);
    let fan_out = RunControl {
        fan_out_slices: true,
        ..RunControl::default()
    };
    // The planning run plans the slices and walks none of them.
    let plan = sync
        .sync_entity(org, entity, SyncMode::Full, &fan_out)
        .await
        .unwrap();
    assert_eq!((plan.outcome, plan.fetched), (SyncOutcome::Interrupted, 0));
    let mut slices = slices_stored(&sync.data, org, entity).await;
    assert_eq!(slices.len(), 4);
    let run = slices[0].run_id.clone();
    // Every slice but the last two walked by its job; the last two walked to their end
    // without their jobs getting to the commit (marked done), then all four jobs at once.
    for s in &slices[..2] {
        let r = sync
            .sync_slice(org, entity, &run, s.index, &RunControl::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.report.outcome, r.committed),
            (SyncOutcome::Succeeded, false)
        );
        assert!(r.report.fetched > 500 && r.report.pages >= 5, "{r:?}");
    }
    for s in slices.iter_mut().skip(2) {
        s.done = true;
        sync.data.save_slice(org, entity, s).await.unwrap();
    }
    let jobs = (0..4u32).map(|i| {
        let sync = sync.clone();
        let run = run.clone();
        tokio::spawn(async move {
            sync.sync_slice(org, entity, &run, i, &RunControl::default())
                .await
        })
    });
    let mut committed = 0;
    for j in futures::future::join_all(jobs).await {
        match j.unwrap() {
            Ok(Some(r)) => {
                assert_ne!(r.report.outcome, SyncOutcome::Failed, "{r:?}");
                committed += usize::from(r.committed);
            }
            Ok(None) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(committed, 1, "exactly one job commits");
    let (cursor, _) = sync.data.load_cursor(org, entity).await.unwrap();
    assert!(cursor.in_progress.is_none() && cursor.last_full_at.is_some());
    assert!(slices_stored(&sync.data, org, entity).await.is_empty());
    let failures = sync.data.load_failures(org, entity).await.unwrap();
    assert_eq!(failures.consecutive_failures, 0, "{failures:?}");
    // A job of that run delivered later: nothing to do.
    assert!(sync
        .sync_slice(org, entity, &run, 1, &RunControl::default())
        .await
        .unwrap()
        .is_none());
}
