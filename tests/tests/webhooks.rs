//! Classy webhooks through the receiver service against the local store, secrets file and
//! queue, with the jobs run by the local worker path (the scheduler) against the sandbox.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::organization::webhook_secret_name;
use classy_sync_core::domain::webhook::{sign, SvixHeaders};
use classy_sync_core::domain::{Entity, OrgStatus};
use classy_sync_core::engine::scheduler::{run_scheduler, SchedulerOptions};
use classy_sync_core::engine::webhooks::{Requested, WebhookOutcome, WebhookReceiver};
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_tests::Harness;
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config() -> SandboxConfig {
    SandboxConfig {
        seed: 13,
        orgs: 1,
        apps: 1,
        supporters: 60,
        campaigns: 3,
        transactions: 120,
        plans: 10,
        ..SandboxConfig::default()
    }
}

async fn setup() -> (Harness, u64, WebhookReceiver) {
    let h = Harness::start(config()).await;
    let org = h.orgs[0];
    for r in h
        .sync
        .sync_org(org, SyncMode::Full, &RunControl::default())
        .await
    {
        assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
    }
    h.root
        .secrets
        .put(
            &webhook_secret_name(org),
            SecretString::from(SECRET.to_string()),
        )
        .await
        .unwrap();
    let mut receiver = WebhookReceiver::new(
        h.data.clone(),
        h.root.secrets.clone(),
        h.root.job_queue().unwrap(),
    );
    receiver.options.debounce = Duration::from_millis(500);
    (h, org, receiver)
}

fn signed(id: &str, ts: i64, body: &[u8]) -> SvixHeaders {
    SvixHeaders {
        id: Some(id.into()),
        timestamp: Some(ts.to_string()),
        signature: Some(sign(SECRET, id, ts, body).unwrap()),
    }
}

const TYPES: [&str; 4] = [
    "supporter.updated",
    "transaction.created",
    "recurring_donation_plan.updated",
    "something.else",
];

/// Sends events `range` (cycling through the types); returns what each pair did, counted.
async fn burst(
    r: &WebhookReceiver,
    org: u64,
    range: std::ops::Range<usize>,
) -> BTreeMap<(Entity, Requested), usize> {
    let mut seen = BTreeMap::new();
    let now = r.data.clock.unix();
    for i in range {
        let body = json!({"type": TYPES[i % 4], "data": {"id": i}}).to_string();
        let id = format!("msg_burst_{i}");
        let out = r
            .receive(
                &org.to_string(),
                &signed(&id, now, body.as_bytes()),
                body.as_bytes(),
            )
            .await;
        let WebhookOutcome::Accepted { entities } = out else {
            panic!("event {i}: {out:?}");
        };
        for pair in entities {
            *seen.entry(pair).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_events_starts_at_most_two_syncs_per_pair_and_loses_no_change() {
    let (h, org, receiver) = setup().await;
    let webhook_entities = [
        Entity::Supporters,
        Entity::Transactions,
        Entity::RecurringPlans,
    ];

    // The first part of the burst: one job per pair, the rest coalesce into it.
    let first = burst(&receiver, org, 0..400).await;
    for e in webhook_entities {
        assert_eq!(
            first.get(&(e, Requested::Enqueued)),
            Some(&1),
            "{e}: {first:?}"
        );
    }

    // Syncs of the three pairs hold their leases (they have read past what comes next);
    // a supporter changes; the rest of the burst arrives meanwhile.
    let mut leases = Vec::new();
    for e in webhook_entities {
        leases.push(
            h.sync
                .acquire_lease(org, e, "a-running-sync")
                .await
                .unwrap(),
        );
    }
    let truth = h.truth(org, Entity::Supporters).await;
    let id = truth[0]["id"].as_u64().unwrap();
    h.patch(
        org,
        Entity::Supporters,
        id,
        json!({"first_name": "Changed-During-Burst"}),
    )
    .await;
    let second = burst(&receiver, org, 400..1000).await;
    for e in webhook_entities {
        assert_eq!(
            second.get(&(e, Requested::FollowUp)),
            Some(&1),
            "{e}: {second:?}"
        );
        assert_eq!(
            second.get(&(e, Requested::Enqueued)),
            None,
            "{e}: {second:?}"
        );
    }
    for l in leases {
        h.sync.release_lease(l).await.unwrap();
    }

    // A redelivery of any of them enqueues nothing.
    let body = json!({"type": TYPES[1], "data": {"id": 1}}).to_string();
    let again = receiver
        .receive(
            &org.to_string(),
            &signed("msg_burst_1", h.data.clock.unix(), body.as_bytes()),
            body.as_bytes(),
        )
        .await;
    assert_eq!(again, WebhookOutcome::Duplicate);
    assert_eq!(again.status(), 200);

    // The local worker path runs what is queued, delayed messages included (the
    // scheduler's idle check does not see a delayed message, so run it until none is live).
    let queue = h.root.job_queue().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = SchedulerOptions {
        tick: Duration::from_secs(3600),
        concurrency: 4,
        visibility: Duration::from_secs(60),
        exit_when_idle: true,
        plugins: false,
    };
    let started = std::time::Instant::now();
    while queue.stats().await.unwrap().oldest_age_secs.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the queue drains"
        );
        run_scheduler(
            h.sync.clone(),
            h.plugins.clone(),
            queue.clone(),
            opts.clone(),
            RunControl::default(),
            tx.clone(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut syncs: BTreeMap<Entity, usize> = BTreeMap::new();
    while let Ok(r) = rx.try_recv() {
        // A report is a sync that took the lease; a follow-up that found its pair busy
        // waited and ran later.
        if let Ok(report) = r {
            assert_eq!(report.outcome, SyncOutcome::Succeeded, "{report:?}");
            *syncs.entry(report.entity).or_insert(0) += 1;
        }
    }
    println!("syncs started per pair: {syncs:?}");
    for e in webhook_entities {
        let n = syncs.get(&e).copied().unwrap_or(0);
        assert!((1..=2).contains(&n), "{e}: {n} syncs");
    }
    assert_eq!(
        syncs.get(&Entity::Campaigns),
        None,
        "campaigns stay on schedule"
    );
    // No change lost: the supporter changed during the burst is stored as it is now.
    h.assert_matches_truth(org, Entity::Supporters).await;
    let stored = h.stored(org, Entity::Supporters).await;
    assert!(format!("{stored:?}").contains("Changed-During-Burst"));
    // Nothing is left queued or marked.
    assert_eq!(queue.stats().await.unwrap().oldest_age_secs, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_their_status_and_enqueue_nothing() {
    let (h, org, receiver) = setup().await;
    let queue = h.root.job_queue().unwrap();
    let now = h.data.clock.unix();
    let org_s = org.to_string();
    let body = br#"{"type": "transaction.created"}"#;

    let big = vec![b' '; 256 * 1024 + 1];
    let out = receiver
        .receive(&org_s, &signed("m1", now, &big), &big)
        .await;
    assert_eq!(out.status(), 413);

    for unknown in ["999999", "not-a-number"] {
        let out = receiver
            .receive(unknown, &signed("m2", now, body), body)
            .await;
        assert_eq!(out.status(), 404, "{unknown}");
    }

    let mut bad = signed("m3", now, body);
    bad.signature = Some(sign(SECRET, "m3", now, b"{}").unwrap());
    assert_eq!(receiver.receive(&org_s, &bad, body).await.status(), 401);
    let stale = signed("m4", now - 301, body);
    assert_eq!(receiver.receive(&org_s, &stale, body).await.status(), 401);
    let mut missing = signed("m5", now, body);
    missing.signature = None;
    assert_eq!(receiver.receive(&org_s, &missing, body).await.status(), 401);
    let other_secret = SvixHeaders {
        signature: Some(sign("whsec_c2VjcmV0LWtleQ==", "m6", now, body).unwrap()),
        ..signed("m6", now, body)
    };
    assert_eq!(
        receiver.receive(&org_s, &other_secret, body).await.status(),
        401
    );

    let not_json = b"type=transaction.created";
    let out = receiver
        .receive(&org_s, &signed("m7", now, not_json), not_json)
        .await;
    assert_eq!(out.status(), 400);
    // No answer carries the secret or the body.
    for o in [&out, &receiver.receive(&org_s, &bad, body).await] {
        assert!(!o.body().contains("MfKQ9r8"));
        assert!(!o.body().contains("transaction.created"));
    }

    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.oldest_age_secs, None, "nothing enqueued");

    // A disabled organization is unknown to the receiver.
    h.data
        .set_org_status(org, OrgStatus::Disabled)
        .await
        .unwrap();
    let out = receiver
        .receive(&org_s, &signed("m8", now, body), body)
        .await;
    assert_eq!(out.status(), 404);
    h.data
        .set_org_status(org, OrgStatus::Enabled)
        .await
        .unwrap();

    // The same delivery, signed and JSON, is accepted: one job for transactions.
    let out = receiver
        .receive(&org_s, &signed("m9", now, body), body)
        .await;
    assert_eq!(
        out,
        WebhookOutcome::Accepted {
            entities: vec![(Entity::Transactions, Requested::Enqueued)]
        }
    );
    // Delayed by the debounce: live, not yet visible.
    let stats = queue.stats().await.unwrap();
    assert!(stats.oldest_age_secs.is_some());
    assert_eq!(stats.visible, 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(queue.stats().await.unwrap().visible, 1);
}
