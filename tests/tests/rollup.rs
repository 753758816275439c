//! The donor rollup (`ROLLUP#D#…`) and the quality facts (`ROLLUP#Q#…`) under random sequences of syncs from the sandbox over
//! real sockets: new supporters, gifts (successful and failed), refunds, changed amounts and
//! dates, gifts moved between supporters, changed supporters; incremental and full syncs,
//! syncs stopped halfway, and a store whose rollup is gone (as before the rollup existed).
//! After every round the rollup equals a full recompute (from the sandbox's own records, from
//! the gift index, and a rebuild that finds nothing to write), and every donor report folded
//! from it equals the one folded from the gift index, for several windows; likewise the
//! facts equal a rebuild from the records, and quality reports from them equal reports
//! from the records (several times and listing limits). A seeded loop:
//! `ROLLUP_SEEDS=1,2,3` picks the seeds.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::aggregates::to_cents;
use classy_sync_core::domain::analytics::rollup::DonorGifts;
use classy_sync_core::domain::analytics::{AnalyticsConfig, Gift, Period};
use classy_sync_core::domain::keys::{self, org_pk};
use classy_sync_core::domain::{Entity, Timestamp};
use classy_sync_core::engine::quality_rollup::QUALITY_ENTITIES;
use classy_sync_core::engine::tenants::item_kind;
use classy_sync_core::engine::{RunControl, SyncMode, SyncOutcome};
use classy_sync_core::ports::store::{Condition, SkRange};
use classy_sync_tests::Harness;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn config(seed: u64) -> SandboxConfig {
    SandboxConfig {
        seed,
        orgs: 1,
        apps: 1,
        supporters: 300,
        campaigns: 6,
        transactions: 900,
        plans: 40,
        ..SandboxConfig::default()
    }
}

fn ts(v: &Value) -> Option<i64> {
    Timestamp::parse(v.as_str()?).ok().map(|t| t.unix())
}

fn amount(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Every donor's successful gifts, computed here from the sandbox's transactions.
async fn expected(h: &Harness, org: u64) -> Vec<DonorGifts> {
    let mut txns = h.truth(org, Entity::Transactions).await;
    txns.sort_by_key(|t| t["id"].as_u64().unwrap());
    let mut by: BTreeMap<u64, Vec<Gift>> = BTreeMap::new();
    for t in txns.iter().filter(|t| t["status"] == "success") {
        let Some(s) = t["supporter_id"].as_u64() else {
            continue;
        };
        let date = ts(&t["purchased_at"])
            .or_else(|| ts(&t["created_at"]))
            .or_else(|| ts(&t["updated_at"]))
            .unwrap();
        by.entry(s).or_default().push(Gift {
            date,
            gross: to_cents(amount(&t["total_gross_amount"])),
            net: to_cents(amount(&t["donation_net_amount"])),
            campaign: t["campaign_id"].as_u64(),
        });
    }
    by.into_iter().collect()
}

async fn sync(h: &Harness, org: u64, mode: SyncMode) {
    for r in h.sync.sync_org(org, mode, &RunControl::default()).await {
        assert_eq!(r.unwrap().outcome, SyncOutcome::Succeeded);
    }
}

/// A sync that stops after its first page of transactions: index entries and dirty markers
/// are written, the aggregates (and the rollup) are not refreshed.
async fn sync_dying_halfway(h: &Harness, org: u64) {
    let ctl = RunControl::default();
    let stop = ctl.stop.clone();
    let ctl = RunControl {
        progress: Some(Arc::new(move |p| {
            if p.entity == Entity::Transactions {
                stop.stop();
            }
        })),
        ..ctl
    };
    let _ = h.sync.sync_org(org, SyncMode::Auto, &ctl).await;
}

fn windows() -> Vec<(Period, Timestamp)> {
    let now = Timestamp::parse("2026-11-01T00:00:00Z").unwrap();
    let earlier = Timestamp::parse("2025-06-15T12:00:00Z").unwrap();
    vec![
        (Period::LastDays(30), now),
        (Period::LastMonths(12), now),
        (Period::YearToDate, now),
        (Period::Year(2025), now),
        (Period::LastMonths(12), earlier),
        (Period::LastDays(7), earlier),
    ]
}

/// The rollup is current and equals every full recompute; reports from it equal reports
/// from the gift index.
async fn check(h: &Harness, org: u64, round: &str) {
    assert!(
        h.data.donor_rollup_current(org).await.unwrap(),
        "{round}: the rollup is current after a completed sync"
    );
    let rollup = h.data.donor_rollup(org).await.unwrap();
    same(
        &rollup,
        &expected(h, org).await,
        &format!("{round}: rollup vs sandbox"),
    );
    same(
        &rollup,
        &h.data.donor_gifts_from_index(org).await.unwrap(),
        &format!("{round}: rollup vs gift index"),
    );
    assert_eq!(
        h.data.rebuild_donor_rollup(org).await.unwrap(),
        0,
        "{round}: a full rebuild finds nothing to change"
    );
    check_reports(h, org, round).await;
    assert!(
        h.data.quality_rollup_current(org).await.unwrap(),
        "{round}: the quality facts are current after a completed sync"
    );
    for e in QUALITY_ENTITIES {
        let before = h.data.quality_facts(org, e).await.unwrap();
        assert_eq!(
            h.data.rebuild_quality_rollup(org, e).await.unwrap(),
            0,
            "{round}: a full rebuild of {e:?} facts finds nothing to change"
        );
        assert_eq!(
            before.len() as u64,
            h.truth(org, e).await.len() as u64,
            "{round}: one fact per {e:?} record"
        );
    }
    check_quality(h, org, round).await;
}

/// Quality reports from the facts equal those from the records, at several times and
/// listing limits.
async fn check_quality(h: &Harness, org: u64, round: &str) {
    for now in ["2026-11-01T00:00:00Z", "2024-06-01T00:00:00Z"] {
        let now = Timestamp::parse(now).unwrap().unix();
        for limit in [0, 2, 1000] {
            let fast = h.data.quality_report(&[org], now, limit).await.unwrap();
            let full = h
                .data
                .quality_report_from_records(&[org], now, limit)
                .await
                .unwrap();
            assert_eq!(fast, full, "{round}: quality as of {now}, limit {limit}");
        }
    }
}

/// Equal donor lists; on a difference, names the first donors that differ.
fn same(got: &[DonorGifts], want: &[DonorGifts], what: &str) {
    if got == want {
        return;
    }
    let a: BTreeMap<u64, &Vec<Gift>> = got.iter().map(|(i, g)| (*i, g)).collect();
    let b: BTreeMap<u64, &Vec<Gift>> = want.iter().map(|(i, g)| (*i, g)).collect();
    let differ: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|id| a.get(id) != b.get(id))
        .take(3)
        .map(|id| format!("{id}: {:?} vs {:?}", a.get(id), b.get(id)))
        .collect();
    panic!("{what}: {} vs {} donors; {differ:?}", got.len(), want.len());
}

async fn check_reports(h: &Harness, org: u64, round: &str) {
    let cfg = AnalyticsConfig::default();
    for (period, now) in windows() {
        let w = period.resolve(now);
        let (_, failing) = h.data.recurring(org, w.end).await.unwrap();
        let fast = h
            .data
            .donor_report(org, w, &cfg, failing.clone())
            .await
            .unwrap();
        let scan = h
            .data
            .donor_report_from_index(org, w, &cfg, failing)
            .await
            .unwrap();
        assert_eq!(fast, scan, "{round}: report for {period} as of {now:?}");
    }
}

struct World {
    rng: fastrand::Rng,
    supporters: Vec<u64>,
    campaigns: Vec<u64>,
    txns: Vec<u64>,
}

impl World {
    fn date(&mut self) -> String {
        // 2024-01-01 .. 2026-10-31
        Timestamp::from_unix(self.rng.i64(1_704_067_200..1_793_404_800)).to_classy()
    }

    fn pick(&mut self, v: &[u64]) -> u64 {
        v[self.rng.usize(..v.len())]
    }

    fn dollars(&mut self) -> f64 {
        self.rng.u32(100..50_000) as f64 / 100.0
    }

    /// One random change in the sandbox; returns what it was.
    async fn mutate(&mut self, h: &Harness, org: u64) -> String {
        let base = format!("/orgs/{org}");
        match self.rng.u8(0..12) {
            0 => {
                let s = h
                    .post(
                        &format!("{base}/supporters"),
                        json!({"first_name": "New", "last_name": format!("Donor{}", self.rng.u32(..)),
                               "email_address": format!("n{}@example.org", self.rng.u32(..))}),
                    )
                    .await;
                self.supporters.push(s["id"].as_u64().unwrap());
                "new supporter".into()
            }
            1 | 2 => {
                let sup = self.pick(&self.supporters.clone());
                let camp = self.pick(&self.campaigns.clone());
                let gross = self.dollars();
                let ok = self.rng.u8(0..5) > 0;
                let t = h
                    .post(
                        &format!("{base}/transactions"),
                        json!({"supporter_id": sup, "campaign_id": camp,
                               "status": if ok { "success" } else { "failed" },
                               "total_gross_amount": gross, "donation_gross_amount": gross,
                               "fees_amount": 1.0, "donation_net_amount": gross - 1.0,
                               "currency_code": "USD", "purchased_at": self.date()}),
                    )
                    .await;
                self.txns.push(t["id"].as_u64().unwrap());
                format!("new gift of {sup}")
            }
            3 => {
                let t = self.pick(&self.txns.clone());
                h.patch(org, Entity::Transactions, t, json!({"status": "refunded"}))
                    .await;
                format!("refund {t}")
            }
            4 => {
                let t = self.pick(&self.txns.clone());
                let gross = self.dollars();
                h.patch(
                    org,
                    Entity::Transactions,
                    t,
                    json!({"total_gross_amount": gross, "donation_net_amount": gross / 2.0,
                           "purchased_at": self.date()}),
                )
                .await;
                format!("amount and date of {t}")
            }
            5 => {
                let t = self.pick(&self.txns.clone());
                let to = self.pick(&self.supporters.clone());
                h.patch(org, Entity::Transactions, t, json!({"supporter_id": to}))
                    .await;
                format!("move {t} to {to}")
            }
            6 => {
                let t = self.pick(&self.txns.clone());
                h.patch(org, Entity::Transactions, t, json!({"status": "success"}))
                    .await;
                format!("succeed {t}")
            }
            7 => {
                let s = self.pick(&self.supporters.clone());
                h.patch(
                    org,
                    Entity::Supporters,
                    s,
                    json!({"last_name": format!("Changed{}", self.rng.u32(..))}),
                )
                .await;
                format!("change supporter {s}")
            }
            8 => {
                // Quality defects: a bad or shared email, a duplicate name and postal code.
                let s = self.pick(&self.supporters.clone());
                let body = match self.rng.u8(0..4) {
                    0 => json!({"email_address": "broken@@example"}),
                    1 => json!({"email_address": ""}),
                    2 => json!({"email_address": "Shared@Example.org "}),
                    _ => {
                        json!({"first_name": "Pat", "last_name": "Lee", "postal_code": "12345-6789"})
                    }
                };
                h.patch(org, Entity::Supporters, s, body.clone()).await;
                format!("supporter {s}: {body}")
            }
            9 => {
                let t = self.pick(&self.txns.clone());
                let body = match self.rng.u8(0..4) {
                    0 => json!({"currency_code": "EUR"}),
                    1 => json!({"campaign_id": 999_999}),
                    2 => json!({"purchased_at": "2030-01-01T00:00:00+0000"}),
                    _ => json!({"fees_amount": 99999.0}),
                };
                h.patch(org, Entity::Transactions, t, body.clone()).await;
                format!("transaction {t}: {body}")
            }
            10 => {
                let t = self.pick(&self.txns.clone());
                h.patch(
                    org,
                    Entity::Transactions,
                    t,
                    json!({"supporter_id": 999_999_999}),
                )
                .await;
                format!("transaction {t} to an unknown supporter")
            }
            _ => {
                let s = self.pick(&self.supporters.clone());
                h.patch(
                    org,
                    Entity::Supporters,
                    s,
                    json!({"created_at": "2031-05-05T00:00:00+0000"}),
                )
                .await;
                format!("supporter {s} created in the future")
            }
        }
    }
}

async fn ids(h: &Harness, org: u64, e: Entity) -> Vec<u64> {
    h.truth(org, e)
        .await
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

async fn run_seed(seed: u64, rounds: usize) {
    let h = Harness::start(config(seed)).await;
    let org = h.orgs[0];
    // Before any sync there is nothing to read it from.
    assert!(!h.data.donor_rollup_current(org).await.unwrap());
    sync(&h, org, SyncMode::Full).await;
    check(&h, org, &format!("seed {seed}, first full sync")).await;
    let mut w = World {
        rng: fastrand::Rng::with_seed(seed),
        supporters: ids(&h, org, Entity::Supporters).await,
        campaigns: ids(&h, org, Entity::Campaigns).await,
        txns: ids(&h, org, Entity::Transactions).await,
    };
    for round in 0..rounds {
        let mut did = Vec::new();
        for _ in 0..w.rng.usize(1..8) {
            did.push(w.mutate(&h, org).await);
        }
        // The first rounds die halfway and lose the rollup; then chance decides.
        let how = match round {
            1 => 2,
            2 => 3,
            _ => w.rng.u8(0..10),
        };
        let label = format!("seed {seed}, round {round} ({how}): {did:?}");
        match how {
            0 | 1 => sync(&h, org, SyncMode::Full).await,
            2 => {
                // Enough changed transactions for several pages, then a sync that dies
                // after the first: the rollup is not current, reports read the index.
                h.post(
                    &format!("/orgs/{org}/transactions/touch"),
                    json!({"count": 250}),
                )
                .await;
                sync_dying_halfway(&h, org).await;
                assert!(
                    !h.data.donor_rollup_current(org).await.unwrap(),
                    "{label}: a sync died halfway"
                );
                assert!(!h.data.quality_rollup_current(org).await.unwrap());
                check_reports(&h, org, &label).await;
                check_quality(&h, org, &label).await;
                sync(&h, org, SyncMode::Auto).await;
            }
            3 => {
                // A store from before the rollup: the next sync builds it.
                let pk = org_pk(org);
                h.data
                    .store
                    .delete_range(&pk, &SkRange::prefix(keys::DONOR_ROLLUP_PREFIX))
                    .await
                    .unwrap();
                h.data
                    .store
                    .delete(&pk, keys::ROLLUP_READY_SK, Condition::Always)
                    .await
                    .unwrap();
                let e = QUALITY_ENTITIES[w.rng.usize(..3)];
                h.data
                    .store
                    .delete_range(&pk, &SkRange::prefix(keys::quality_rollup_prefix(e)))
                    .await
                    .unwrap();
                h.data
                    .store
                    .delete(&pk, &keys::quality_ready_sk(e), Condition::Always)
                    .await
                    .unwrap();
                assert!(!h.data.donor_rollup_current(org).await.unwrap());
                assert!(!h.data.quality_rollup_current(org).await.unwrap());
                check_reports(&h, org, &label).await;
                check_quality(&h, org, &label).await;
                sync(&h, org, SyncMode::Auto).await;
            }
            _ => sync(&h, org, SyncMode::Auto).await,
        }
        check(&h, org, &label).await;
    }
    // A purge's dry run names them.
    for sk in [
        keys::donor_rollup_sk(1),
        keys::quality_rollup_sk(Entity::Supporters, 1),
    ] {
        assert_eq!(item_kind(&sk), "rollups");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donor_rollup_equals_a_full_recompute_after_random_syncs() {
    let seeds: Vec<u64> = std::env::var("ROLLUP_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![7, 19]);
    for seed in seeds {
        run_seed(seed, 12).await;
    }
}
