//! The sync against the sandbox over real sockets: full and incremental sync equal the
//! sandbox's truth record by record, aggregates equal an independent computation, and the
//! API is used efficiently.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_tests::Harness;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn config() -> SandboxConfig {
    SandboxConfig {
        seed: 7,
        orgs: 2,
        apps: 1,
        supporters: 600,
        campaigns: 8,
        transactions: 1500,
        plans: 120,
        ..SandboxConfig::default()
    }
}

async fn sync_all(
    h: &Harness,
    org: u64,
    mode: SyncMode,
) -> Vec<classy_sync_core::engine::SyncReport> {
    let reports: Vec<_> = h
        .sync
        .sync_org(org, mode, &RunControl::default())
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    for r in &reports {
        assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    }
    reports
}

/// One `Auto` sync of the supporters of `org`.
async fn sync_supporters(h: &Harness, org: u64) -> classy_sync_core::engine::SyncReport {
    h.sync
        .sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap()
}

fn cents(v: &Value) -> i64 {
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        _ => 0.0,
    };
    (x * 100.0).round() as i64
}

/// Gross and net cents, gifts, largest gift cents, first and last gift, active plan.
type Expected = (i64, i64, u64, i64, String, String, bool);

/// Supporter aggregates computed here from the raw transactions and plans, not by the engine.
fn expected_supporter_aggregates(txns: &[Value], plans: &[Value]) -> BTreeMap<u64, Expected> {
    let mut out: BTreeMap<u64, Expected> = BTreeMap::new();
    for t in txns.iter().filter(|t| t["status"] == "success") {
        let Some(s) = t["supporter_id"].as_u64() else {
            continue;
        };
        let date = t["purchased_at"]
            .as_str()
            .or(t["created_at"].as_str())
            .unwrap()
            .to_string();
        let date = Timestamp::parse(&date).unwrap().to_classy();
        let e = out
            .entry(s)
            .or_insert((0, 0, 0, i64::MIN, date.clone(), date.clone(), false));
        e.0 += cents(&t["total_gross_amount"]);
        e.1 += cents(&t["donation_net_amount"]);
        e.2 += 1;
        e.3 = e.3.max(cents(&t["total_gross_amount"]));
        if date < e.4 {
            e.4 = date.clone();
        }
        if date > e.5 {
            e.5 = date;
        }
    }
    for p in plans.iter().filter(|p| p["status"] == "active") {
        if let Some(s) = p["supporter_id"].as_u64() {
            out.entry(s)
                .or_insert((0, 0, 0, i64::MIN, String::new(), String::new(), false))
                .6 = true;
        }
    }
    out
}

async fn assert_aggregates(h: &Harness, org: u64) {
    let txns = h.truth(org, Entity::Transactions).await;
    let plans = h.truth(org, Entity::RecurringPlans).await;
    let expected = expected_supporter_aggregates(&txns, &plans);
    let stored = h.stored(org, Entity::Supporters).await;
    let mut checked = 0;
    for row in &stored {
        let id = row["id"].as_u64().unwrap();
        let got_gross = cents(&row["lifetime_gross_amount"]);
        match expected.get(&id) {
            None => {
                assert_eq!(got_gross, 0, "supporter {id} has no successful gift");
                assert_eq!(row["gift_count"], 0);
            }
            Some((gross, net, count, largest, first, last, active)) => {
                checked += 1;
                assert_eq!(got_gross, *gross, "supporter {id} lifetime gross");
                assert_eq!(
                    cents(&row["lifetime_net_amount"]),
                    *net,
                    "supporter {id} lifetime net"
                );
                assert_eq!(
                    row["gift_count"].as_u64().unwrap(),
                    *count,
                    "supporter {id} gift count"
                );
                assert_eq!(
                    row["has_active_recurring_plan"].as_bool().unwrap(),
                    *active,
                    "supporter {id} plan"
                );
                if *count > 0 {
                    assert_eq!(
                        cents(&row["largest_gift_amount"]),
                        *largest,
                        "supporter {id} largest"
                    );
                    assert_eq!(
                        row["first_gift_at"].as_str().unwrap(),
                        first,
                        "supporter {id} first gift"
                    );
                    assert_eq!(
                        row["last_gift_at"].as_str().unwrap(),
                        last,
                        "supporter {id} last gift"
                    );
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} supporters with gifts: the data set is too thin to test"
    );
    // Campaign totals.
    let mut raised: BTreeMap<u64, (i64, BTreeSet<u64>)> = BTreeMap::new();
    for t in txns.iter().filter(|t| t["status"] == "success") {
        if let Some(c) = t["campaign_id"].as_u64() {
            let e = raised.entry(c).or_default();
            e.0 += cents(&t["total_gross_amount"]);
            e.1.insert(t["supporter_id"].as_u64().unwrap_or(0));
        }
    }
    for row in h.stored(org, Entity::Campaigns).await {
        let id = row["id"].as_u64().unwrap();
        let (gross, donors) = raised
            .get(&id)
            .map(|(g, d)| (*g, d.len() as u64))
            .unwrap_or((0, 0));
        assert_eq!(
            cents(&row["total_raised_gross"]),
            gross,
            "campaign {id} raised"
        );
        assert_eq!(
            row["donor_count"].as_u64().unwrap(),
            donors,
            "campaign {id} donors"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_equals_the_sandbox_and_aggregates_are_right() {
    let h = Harness::start(config()).await;
    for &org in &h.orgs {
        let reports = sync_all(&h, org, SyncMode::Auto).await;
        assert!(reports.iter().all(|r| r.mode == "full"));
        for e in Entity::ALL {
            h.assert_matches_truth(org, e).await;
        }
        assert_aggregates(&h, org).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_api_calls_stay_within_budget_and_idle_incremental_is_one_call() {
    let h = Harness::start(SandboxConfig {
        orgs: 1,
        supporters: 2500,
        transactions: 3000,
        ..config()
    })
    .await;
    let org = h.orgs[0];
    h.reset_counters().await;
    let reports = sync_all(&h, org, SyncMode::Full).await;
    let records: u64 = reports.iter().map(|r| r.fetched).sum();
    let calls = h.counters().await["total"].as_u64().unwrap();
    // The minimum possible: one token, one high-water probe per entity, full pages only.
    let mut minimum = 1;
    for e in Entity::ALL {
        let n = h.truth(org, e).await.len() as u64;
        minimum += 1 + n.div_ceil(100).max(1);
    }
    assert_eq!(calls, minimum, "{calls} calls for {records} records");

    // Nothing changed: exactly one call per entity (and no new token).
    for r in sync_all(&h, org, SyncMode::Auto).await {
        assert_eq!((r.created, r.updated), (0, 0), "{r:?}");
    }
    h.reset_counters().await;
    for r in sync_all(&h, org, SyncMode::Auto).await {
        assert_eq!(r.fetched, 0, "{r:?}");
    }
    let c = h.counters().await;
    assert_eq!(c["total"].as_u64().unwrap(), 4, "one call per entity: {c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_picks_up_exactly_the_changes_including_the_cursor_second() {
    let h = Harness::start(config()).await;
    let org = h.orgs[0];
    sync_all(&h, org, SyncMode::Auto).await;

    // A first round of changes now: the cursor then stands on this (recent) second.
    let first = h
        .post(
            &format!("/orgs/{org}/supporters/touch"),
            json!({"count": 5}),
        )
        .await;
    let cursor_second = first["updated_at"].as_str().unwrap().to_string();
    let r = sync_supporters(&h, org).await;
    assert_eq!(r.updated, 5, "{r:?}");
    let (cursor, _) = h.data.load_cursor(org, Entity::Supporters).await.unwrap();
    let at = cursor.committed.unwrap();
    assert!(at.ts <= Timestamp::parse(&cursor_second).unwrap().unix());
    assert!(
        !at.complete,
        "a second this recent may still receive records: it is read again"
    );
    let before: BTreeMap<u64, Value> = h
        .truth(org, Entity::Supporters)
        .await
        .into_iter()
        .map(|s| (s["id"].as_u64().unwrap(), s))
        .collect();

    // Updates stamped in the very second the cursor stands on, plus ordinary ones.
    let supporters = h.truth(org, Entity::Supporters).await;
    let newest = cursor_second;
    let already: BTreeSet<u64> = first["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let same_second: Vec<u64> = supporters
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .filter(|id| !already.contains(id))
        .take(3)
        .collect();
    for id in &same_second {
        h.patch(
            org,
            Entity::Supporters,
            *id,
            json!({"first_name": "Boundary", "updated_at": newest}),
        )
        .await;
    }
    // Records already read in this second change again within it.
    for id in &already {
        h.patch(
            org,
            Entity::Supporters,
            *id,
            json!({"city": "Again", "updated_at": newest}),
        )
        .await;
    }
    h.post(
        &format!("/orgs/{org}/supporters/touch"),
        json!({"count": 40}),
    )
    .await;
    let created = h
        .post(&format!("/orgs/{org}/supporters"), json!({"first_name": "New", "last_name": "Donor", "email_address": "new.donor@example.org", "opt_in": true}))
        .await;
    let txns = h.truth(org, Entity::Transactions).await;
    let refunded: Vec<u64> = txns
        .iter()
        .filter(|t| t["status"] == "success")
        .take(7)
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    for id in &refunded {
        h.patch(
            org,
            Entity::Transactions,
            *id,
            json!({"status": "refunded"}),
        )
        .await;
    }

    let reports = sync_all(&h, org, SyncMode::Auto).await;
    let sup = reports
        .iter()
        .find(|r| r.entity == Entity::Supporters)
        .unwrap();
    // Exactly the records whose content changed, judged from the sandbox's own data.
    let expected_updates: BTreeSet<u64> = h
        .truth(org, Entity::Supporters)
        .await
        .into_iter()
        .filter(|s| {
            before
                .get(&s["id"].as_u64().unwrap())
                .is_some_and(|b| b != s)
        })
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert!(same_second
        .iter()
        .chain(&already)
        .all(|id| expected_updates.contains(id)));
    assert!(expected_updates.len() >= 40, "{}", expected_updates.len());
    assert_eq!(sup.mode, "incremental");
    assert_eq!(sup.created, 1, "{sup:?}");
    assert_eq!(sup.updated, expected_updates.len() as u64, "{sup:?}");
    let tx = reports
        .iter()
        .find(|r| r.entity == Entity::Transactions)
        .unwrap();
    assert_eq!(
        (tx.created, tx.updated),
        (0, refunded.len() as u64),
        "{tx:?}"
    );
    for e in Entity::ALL {
        h.assert_matches_truth(org, e).await;
    }
    assert!(h
        .stored(org, Entity::Supporters)
        .await
        .iter()
        .any(|r| r["id"] == created["id"]));
    assert_aggregates(&h, org).await;

    // A second round: nothing new is fetched twice.
    for r in sync_all(&h, org, SyncMode::Auto).await {
        assert_eq!((r.created, r.updated), (0, 0), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_changing_while_pages_are_read_end_in_exact_truth() {
    let h = Harness::start(SandboxConfig {
        orgs: 1,
        supporters: 3000,
        ..config()
    })
    .await;
    let org = h.orgs[0];
    // Slow every answer a little so changes land mid-walk.
    h.put(
        "/faults",
        json!({"seed": 3, "slow_rate": 1.0, "slow_ms": 15}),
    )
    .await;
    let sync = h.sync.clone();
    let walker = tokio::spawn(async move {
        sync.sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
    });
    let ids: Vec<u64> = h
        .truth(org, Entity::Supporters)
        .await
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    for (i, id) in ids.iter().step_by(97).enumerate() {
        h.patch(
            org,
            Entity::Supporters,
            *id,
            json!({"last_name": format!("Changed{i}")}),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let first = walker.await.unwrap().unwrap();
    assert_eq!(first.outcome, SyncOutcome::Succeeded);
    // Changes made during the walk are caught by the next incremental run; more changes too.
    for (i, id) in ids.iter().skip(5).step_by(131).enumerate() {
        h.patch(
            org,
            Entity::Supporters,
            *id,
            json!({"city": format!("Town{i}")}),
        )
        .await;
    }
    h.put("/faults", json!({"seed": 3})).await;
    let sync = h.sync.clone();
    let walker = tokio::spawn(async move {
        sync.sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
    });
    for id in ids.iter().skip(11).step_by(173) {
        h.patch(org, Entity::Supporters, *id, json!({"state": "ZZ"}))
            .await;
    }
    walker.await.unwrap().unwrap();
    let last = sync_supporters(&h, org).await;
    assert_eq!(last.outcome, SyncOutcome::Succeeded);
    h.assert_matches_truth(org, Entity::Supporters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_that_holds_more_than_a_page_is_read_whole() {
    let h = Harness::start(SandboxConfig {
        orgs: 1,
        supporters: 800,
        ..config()
    })
    .await;
    let org = h.orgs[0];
    sync_supporters(&h, org).await;
    // 250 records stamped in one (old, settled) second, beyond the cursor.
    let stamp = "2026-11-01T10:00:00+0000";
    let touched = h
        .post(
            &format!("/orgs/{org}/supporters/touch"),
            json!({"count": 250, "updated_at": stamp}),
        )
        .await;
    assert_eq!(touched["ids"].as_array().unwrap().len(), 250);
    let r = sync_supporters(&h, org).await;
    assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    assert_eq!(r.updated, 250, "{r:?}");
    h.assert_matches_truth(org, Entity::Supporters).await;
}

/// The reproduction from review: 500 supporters changed in one second, 200 more 3 s later,
/// a sync started 3 s after that. The busy second is young (unsettled), and the walk used to
/// stop after reading it, leaving the 200 for a run two minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_busy_second_does_not_end_the_run_before_later_changes() {
    let h = Harness::start(SandboxConfig {
        orgs: 1,
        supporters: 800,
        ..config()
    })
    .await;
    let org = h.orgs[0];
    sync_supporters(&h, org).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ids: Vec<u64> = h
        .truth(org, Entity::Supporters)
        .await
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    let busy: Vec<u64> = ids[..500].to_vec();
    let later: Vec<u64> = ids[500..700].to_vec();
    h.post(
        &format!("/orgs/{org}/supporters/touch"),
        json!({"ids": busy, "updated_at": Timestamp::from_unix(now - 6).to_classy()}),
    )
    .await;
    h.post(
        &format!("/orgs/{org}/supporters/touch"),
        json!({"ids": later, "updated_at": Timestamp::from_unix(now - 3).to_classy()}),
    )
    .await;
    let r = sync_supporters(&h, org).await;
    assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
    assert_eq!(
        r.updated, 700,
        "the 200 later changes belong to this run: {r:?}"
    );
    h.assert_matches_truth(org, Entity::Supporters).await;

    // The next run rereads the unsettled window and finds nothing new to write.
    let again = sync_supporters(&h, org).await;
    assert_eq!(again.outcome, SyncOutcome::Succeeded, "{again:?}");
    assert_eq!(again.updated + again.created, 0, "{again:?}");
    h.assert_matches_truth(org, Entity::Supporters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_of_one_pair_never_overlap() {
    let h = Harness::start(SandboxConfig {
        orgs: 1,
        ..config()
    })
    .await;
    let org = h.orgs[0];
    h.put(
        "/faults",
        json!({"seed": 1, "slow_rate": 1.0, "slow_ms": 30}),
    )
    .await;
    let other = Harness::sync_on(h.dir.path(), &h.client);
    let a = {
        let e = h.sync.clone();
        tokio::spawn(async move {
            e.sync_entity(
                org,
                Entity::Supporters,
                SyncMode::Auto,
                &RunControl::default(),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let b = other
        .sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await;
    assert!(
        matches!(
            b,
            Err(classy_sync_core::engine::EngineError::LeaseHeld { .. })
        ),
        "{b:?}"
    );
    assert_eq!(a.await.unwrap().unwrap().outcome, SyncOutcome::Succeeded);
    h.put("/faults", json!({"seed": 1})).await;
    // Released: the next run proceeds.
    let c = other
        .sync_entity(
            org,
            Entity::Supporters,
            SyncMode::Auto,
            &RunControl::default(),
        )
        .await
        .unwrap();
    assert_eq!(c.outcome, SyncOutcome::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_full_sync_rebuilds_indexes_after_gifts_move_between_supporters() {
    let mut h = Harness::start(SandboxConfig {
        orgs: 1,
        ..config()
    })
    .await;
    // Spill the index sort to disk even on this small organization.
    h.sync.data = h
        .sync
        .data
        .clone()
        .with_options(classy_sync_core::engine::EngineOptions {
            sort_chunk: 97,
            ..Default::default()
        });
    let org = h.orgs[0];
    sync_all(&h, org, SyncMode::Auto).await;
    assert_aggregates(&h, org).await;

    let txns = h.truth(org, Entity::Transactions).await;
    let ok: Vec<&Value> = txns
        .iter()
        .filter(|t| t["status"] == "success" && t["supporter_id"].is_u64())
        .collect();
    let (a, b) = (ok[0], ok[1]);
    // A gift moves to another donor, another is refunded, a third gets a new campaign.
    h.patch(
        org,
        Entity::Transactions,
        a["id"].as_u64().unwrap(),
        json!({"supporter_id": b["supporter_id"]}),
    )
    .await;
    h.patch(
        org,
        Entity::Transactions,
        b["id"].as_u64().unwrap(),
        json!({"status": "refunded"}),
    )
    .await;
    let camp = h.truth(org, Entity::Campaigns).await[1]["id"].clone();
    h.patch(
        org,
        Entity::Transactions,
        ok[2]["id"].as_u64().unwrap(),
        json!({"campaign_id": camp}),
    )
    .await;
    let plans = h.truth(org, Entity::RecurringPlans).await;
    let active = plans.iter().find(|p| p["status"] == "active").unwrap();
    h.patch(
        org,
        Entity::RecurringPlans,
        active["id"].as_u64().unwrap(),
        json!({"status": "canceled"}),
    )
    .await;

    for entity in [Entity::Transactions, Entity::RecurringPlans] {
        let r = h
            .sync
            .sync_entity(org, entity, SyncMode::Full, &RunControl::default())
            .await
            .unwrap();
        assert_eq!(r.outcome, SyncOutcome::Succeeded, "{r:?}");
        assert_eq!(r.mode, "full");
    }
    h.assert_matches_truth(org, Entity::Transactions).await;
    assert_aggregates(&h, org).await;

    // And the same kinds of change through an incremental run.
    h.patch(
        org,
        Entity::Transactions,
        a["id"].as_u64().unwrap(),
        json!({"supporter_id": a["supporter_id"]}),
    )
    .await;
    h.patch(
        org,
        Entity::Transactions,
        ok[3]["id"].as_u64().unwrap(),
        json!({"status": "failed"}),
    )
    .await;
    sync_all(&h, org, SyncMode::Auto).await;
    assert_aggregates(&h, org).await;
}
