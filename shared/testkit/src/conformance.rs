//! One behavioural test suite for every adapter of a port. The local adapters run it in
//! `shared/tests/local_adapters.rs`; the DynamoDB, SQS and Secrets Manager adapters must run
//! the very same functions, so a local run proves what AWS runs.
//!
//! These are plain async functions that panic with a message naming the broken rule.
//! The store and secrets suites namespace every key with a random run id, so they can run
//! against a shared table. The queue suite needs a queue of its own that starts empty.

use classy_sync_core::ports::{
    Condition, Item, JobQueue, ManualClock, OutMessage, QueueError, SecretError, SecretStore,
    SkRange, Store, StoreError, WriteOp,
};
use futures::future::{join_all, BoxFuture};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Retries `check` for a few seconds: DynamoDB's secondary indexes are eventually
/// consistent. Local adapters pass on the first try.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut last = String::new();
    for _ in 0..50 {
        match check().await {
            Ok(()) => return,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {last}");
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

/// Runs every rule of [`Store`] against `store`. Keys are namespaced `CONF#<run id>#...`.
pub async fn store_conformance(store: &dyn Store) {
    let ns = format!("CONF#{}", run_id());
    store_put_get(store, &ns).await;
    store_put_conditions(store, &ns).await;
    store_leases(store, &ns).await;
    store_delete_conditions(store, &ns).await;
    store_races(store, &ns).await;
    store_queries(store, &ns).await;
    store_batch_get(store, &ns).await;
    store_batch_write(store, &ns).await;
    store_transactions(store, &ns).await;
    store_gsi1(store, &ns).await;
    store_validation(store, &ns).await;
}

fn expect_condition_failed(r: Result<(), StoreError>, pk: &str, sk: &str, what: &str) {
    match r {
        Err(StoreError::ConditionFailed { pk: p, sk: s }) => {
            assert_eq!(
                (p.as_str(), s.as_str()),
                (pk, sk),
                "{what}: ConditionFailed must name the item whose condition failed"
            );
        }
        other => panic!("{what}: expected ConditionFailed on {pk}/{sk}, got {other:?}"),
    }
}

fn expect_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{what}: expected StoreError::Invalid, got {other:?}"),
    }
}

async fn get(store: &dyn Store, pk: &str, sk: &str) -> Option<Item> {
    store
        .get(pk, sk)
        .await
        .unwrap_or_else(|e| panic!("get {pk}/{sk} failed: {e}"))
}

async fn put_ok(store: &dyn Store, item: Item, cond: Condition, what: &str) {
    let key = format!("{}/{}", item.pk, item.sk);
    store
        .put(item, cond)
        .await
        .unwrap_or_else(|e| panic!("{what}: put {key} with {cond:?} failed: {e}"));
}

fn with_gsi1(mut item: Item, key: &str) -> Item {
    item.gsi1 = Some(key.to_owned());
    item
}

async fn store_put_get(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#BASIC");
    assert_eq!(get(store, &pk, "META").await, None, "get of a missing item");

    let full = with_gsi1(
        Item::new(&pk, "META", r#"{"name":"Org","n":1}"#)
            .with_version(u64::from(u32::MAX) + 7)
            .with_expiry(1_700_000_000),
        &format!("{ns}#G-basic"),
    );
    put_ok(store, full.clone(), Condition::Always, "basic").await;
    assert_eq!(
        get(store, &pk, "META").await,
        Some(full),
        "get returns every field as put"
    );

    // A put replaces the whole item: absent expiry and gsi1 are removed.
    let bare = Item::new(&pk, "META", "not JSON { \"é\" 🎉 \\ ");
    put_ok(store, bare.clone(), Condition::Always, "overwrite").await;
    assert_eq!(
        get(store, &pk, "META").await,
        Some(bare),
        "a put replaces the item; the store does not interpret data"
    );

    let big = Item::new(&pk, "BIG", "x".repeat(300 * 1024));
    put_ok(store, big.clone(), Condition::Always, "300 KB item").await;
    assert_eq!(get(store, &pk, "BIG").await, Some(big), "large item");

    // Same sort key in another partition is another item.
    assert_eq!(
        get(store, &format!("{pk}X"), "META").await,
        None,
        "partitions are separate"
    );
}

async fn store_put_conditions(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#COND");
    let first = Item::new(&pk, "A", "first").with_version(1);
    put_ok(
        store,
        first.clone(),
        Condition::NotExists,
        "NotExists on absent",
    )
    .await;
    expect_condition_failed(
        store
            .put(Item::new(&pk, "A", "second"), Condition::NotExists)
            .await,
        &pk,
        "A",
        "NotExists on an existing item",
    );
    assert_eq!(
        get(store, &pk, "A").await,
        Some(first),
        "failed put leaves it"
    );

    for wrong in [0, 2] {
        expect_condition_failed(
            store
                .put(
                    Item::new(&pk, "A", "x").with_version(3),
                    Condition::VersionIs(wrong),
                )
                .await,
            &pk,
            "A",
            "VersionIs with a version other than the stored one",
        );
    }
    let second = Item::new(&pk, "A", "second").with_version(2);
    put_ok(
        store,
        second.clone(),
        Condition::VersionIs(1),
        "VersionIs(stored)",
    )
    .await;
    assert_eq!(
        get(store, &pk, "A").await,
        Some(second),
        "VersionIs put applied"
    );

    expect_condition_failed(
        store
            .put(
                Item::new(&pk, "NEW", "x").with_version(1),
                Condition::VersionIs(0),
            )
            .await,
        &pk,
        "NEW",
        "VersionIs on a missing item (DynamoDB: fails)",
    );
    assert_eq!(
        get(store, &pk, "NEW").await,
        None,
        "failed VersionIs creates nothing"
    );

    let forced = Item::new(&pk, "A", "forced").with_version(9);
    put_ok(
        store,
        forced.clone(),
        Condition::Always,
        "Always overwrites",
    )
    .await;
    assert_eq!(get(store, &pk, "A").await, Some(forced));
}

async fn store_leases(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#LEASE");
    let sk = "LEASE#supporters";
    let a = Item::new(&pk, sk, "holder-a").with_expiry(1000);
    put_ok(
        store,
        a.clone(),
        Condition::NotExistsOrExpired { now: 900 },
        "take a free lease",
    )
    .await;
    for now in [950, 1000] {
        expect_condition_failed(
            store
                .put(
                    Item::new(&pk, sk, "holder-b").with_expiry(now + 100),
                    Condition::NotExistsOrExpired { now },
                )
                .await,
            &pk,
            sk,
            "taking a lease that has not expired (expires_at >= now)",
        );
    }
    assert_eq!(
        get(store, &pk, sk).await,
        Some(a),
        "the holder keeps its lease"
    );
    let b = Item::new(&pk, sk, "holder-b").with_expiry(1101);
    put_ok(
        store,
        b.clone(),
        Condition::NotExistsOrExpired { now: 1001 },
        "take over an expired lease",
    )
    .await;
    assert_eq!(get(store, &pk, sk).await, Some(b), "lease taken over");

    let forever = Item::new(&pk, "NOEXPIRY", "x");
    put_ok(store, forever, Condition::Always, "item without expiry").await;
    expect_condition_failed(
        store
            .put(
                Item::new(&pk, "NOEXPIRY", "y"),
                Condition::NotExistsOrExpired { now: i64::MAX },
            )
            .await,
        &pk,
        "NOEXPIRY",
        "an item without expires_at never counts as expired",
    );
}

async fn store_delete_conditions(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#DEL");
    for cond in [
        Condition::Always,
        Condition::NotExists,
        Condition::NotExistsOrExpired { now: 5 },
    ] {
        store
            .delete(&pk, "MISSING", cond)
            .await
            .unwrap_or_else(|e| panic!("deleting a missing item with {cond:?} must succeed: {e}"));
    }
    expect_condition_failed(
        store.delete(&pk, "MISSING", Condition::VersionIs(1)).await,
        &pk,
        "MISSING",
        "delete VersionIs on a missing item",
    );

    put_ok(
        store,
        Item::new(&pk, "V", "x").with_version(4),
        Condition::Always,
        "setup",
    )
    .await;
    expect_condition_failed(
        store.delete(&pk, "V", Condition::NotExists).await,
        &pk,
        "V",
        "delete NotExists on an existing item",
    );
    expect_condition_failed(
        store.delete(&pk, "V", Condition::VersionIs(3)).await,
        &pk,
        "V",
        "delete with a wrong version",
    );
    assert!(
        get(store, &pk, "V").await.is_some(),
        "failed delete keeps the item"
    );
    store
        .delete(&pk, "V", Condition::VersionIs(4))
        .await
        .expect("delete with the stored version");
    assert_eq!(get(store, &pk, "V").await, None, "deleted");

    put_ok(
        store,
        Item::new(&pk, "L", "x").with_expiry(100),
        Condition::Always,
        "setup",
    )
    .await;
    expect_condition_failed(
        store
            .delete(&pk, "L", Condition::NotExistsOrExpired { now: 50 })
            .await,
        &pk,
        "L",
        "delete of an unexpired lease",
    );
    store
        .delete(&pk, "L", Condition::NotExistsOrExpired { now: 101 })
        .await
        .expect("delete of an expired lease");
    assert_eq!(get(store, &pk, "L").await, None, "expired lease deleted");

    store
        .delete(&pk, "L", Condition::Always)
        .await
        .expect("deleting twice is fine");
}

/// Concurrent conditional writes on one item: exactly one wins.
async fn store_races(store: &dyn Store, ns: &str) {
    const WRITERS: usize = 8;
    let pk = format!("{ns}#RACE");

    put_ok(
        store,
        Item::new(&pk, "V", "start").with_version(5),
        Condition::Always,
        "setup",
    )
    .await;
    let results = join_all((0..WRITERS).map(|i| {
        store.put(
            Item::new(&pk, "V", format!("writer-{i}")).with_version(6),
            Condition::VersionIs(5),
        )
    }))
    .await;
    let winners = one_winner(&results, &pk, "V", "concurrent VersionIs(5) puts");
    assert_eq!(
        get(store, &pk, "V").await.map(|i| (i.data, i.version)),
        Some((format!("writer-{winners}"), 6)),
        "the stored item is the winner's"
    );

    let results = join_all((0..WRITERS).map(|i| {
        store.put(
            Item::new(&pk, "N", format!("creator-{i}")),
            Condition::NotExists,
        )
    }))
    .await;
    let w = one_winner(&results, &pk, "N", "concurrent NotExists puts");
    assert_eq!(
        get(store, &pk, "N").await.map(|i| i.data),
        Some(format!("creator-{w}"))
    );

    put_ok(
        store,
        Item::new(&pk, "LEASE", "old").with_expiry(10),
        Condition::Always,
        "setup",
    )
    .await;
    let results = join_all((0..WRITERS).map(|i| {
        store.put(
            Item::new(&pk, "LEASE", format!("worker-{i}")).with_expiry(200),
            Condition::NotExistsOrExpired { now: 100 },
        )
    }))
    .await;
    let w = one_winner(&results, &pk, "LEASE", "concurrent lease takeovers");
    assert_eq!(
        get(store, &pk, "LEASE").await.map(|i| i.data),
        Some(format!("worker-{w}"))
    );
}

fn one_winner(results: &[Result<(), StoreError>], pk: &str, sk: &str, what: &str) -> usize {
    let mut winners = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(()) => winners.push(i),
            Err(StoreError::ConditionFailed { pk: p, sk: s }) if p == pk && s == sk => {}
            Err(e) => panic!("{what}: writer {i} failed with {e:?} instead of ConditionFailed"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{what}: exactly one writer must win, winners were {winners:?}"
    );
    winners[0]
}

/// Pages through `range` with `limit`, checking each page against `expected` (sort keys in
/// byte order) and that `next` is `Some` exactly when more items follow.
async fn check_paging(
    store: &dyn Store,
    pk: &str,
    range: &SkRange,
    start_after: Option<&str>,
    limit: usize,
    expected: &[String],
) {
    let mut pos = 0;
    let mut after = start_after.map(str::to_owned);
    loop {
        let page = store
            .query(pk, range, after.as_deref(), limit)
            .await
            .unwrap_or_else(|e| panic!("query {range:?} limit {limit} failed: {e}"));
        let end = (pos + limit).min(expected.len());
        let got: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
        let want: Vec<&str> = expected[pos..end].iter().map(String::as_str).collect();
        assert_eq!(
            got, want,
            "query {range:?} after {after:?} limit {limit}: wrong page (items {pos}..{end})"
        );
        assert!(
            page.items.iter().all(|i| i.pk == pk),
            "query returned items of another partition"
        );
        let more = end < expected.len();
        assert_eq!(
            page.next.is_some(),
            more,
            "query {range:?} limit {limit}: next must be Some exactly when more items follow \
             (page ends at {end} of {})",
            expected.len()
        );
        if !more {
            return;
        }
        assert_eq!(
            page.next.as_deref(),
            want.last().copied(),
            "next must be the page's last sort key"
        );
        after = page.next;
        pos = end;
    }
}

async fn store_queries(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#Q");
    let mut sks: Vec<String> = [
        "A",
        "A#",
        "A$",
        "AB#1",
        "B#1",
        "A#é",
        "A#\u{10FFFF}",
        "A#~",
        "Z",
        "Z\u{10FFFF}",
        "Z\u{10FFFF}a",
        "Z\u{10FFFF}\u{10FFFF}",
        "[",
        "a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sks.extend((0..25).map(|i| format!("A#{i:03}")));
    // The same sort keys in neighbouring partitions must never show up.
    let mut ops = Vec::new();
    for p in [pk.clone(), format!("{pk}X"), format!("{ns}#P")] {
        for sk in &sks {
            ops.push(WriteOp::Put(Item::new(&p, sk, format!("{p}|{sk}"))));
        }
    }
    store.batch_write(ops).await.expect("query setup");

    // DynamoDB orders sort keys by UTF-8 bytes, which is Rust's `str` order.
    let mut all = sks.clone();
    all.sort();
    let matching = |f: &dyn Fn(&str) -> bool| -> Vec<String> {
        all.iter().filter(|s| f(s)).cloned().collect()
    };

    let full = store
        .query(&pk, &SkRange::All, None, 1000)
        .await
        .expect("query");
    for item in &full.items {
        assert_eq!(item.data, format!("{pk}|{}", item.sk), "query item data");
    }

    for limit in [1, 7, all.len() - 1, all.len(), 1000] {
        check_paging(store, &pk, &SkRange::All, None, limit, &all).await;
    }
    for prefix in [
        "A#",
        "A",
        "Z\u{10FFFF}",
        "",
        "A#0",
        "A#01",
        "nothing",
        "A#é",
    ] {
        let want = matching(&|s: &str| s.starts_with(prefix));
        for limit in [1, 3, 7, 100] {
            check_paging(store, &pk, &SkRange::prefix(prefix), None, limit, &want).await;
        }
    }
    let between = |lo: &str, hi: &str| SkRange::Between(lo.into(), hi.into());
    for (lo, hi) in [
        ("A#005", "A#010"),
        ("A#", "A#002"),
        ("A#0105", "A#015"),
        ("A#024", "A#024"),
        ("Z", "[ "),
    ] {
        let want = matching(&|s: &str| s >= lo && s <= hi);
        for limit in [1, 4, 100] {
            check_paging(store, &pk, &between(lo, hi), None, limit, &want).await;
        }
    }
    assert_eq!(
        matching(&|s: &str| ("A#005"..="A#010").contains(&s)).len(),
        6,
        "suite self-check"
    );

    // start_after: not necessarily an existing key; before or beyond the range.
    let prefix = SkRange::prefix("A#");
    for after in ["A#0105", "A", "A#", "A#010", "A#\u{10FFFF}", "B"] {
        let want = matching(&|s: &str| s.starts_with("A#") && s > after);
        check_paging(store, &pk, &prefix, Some(after), 4, &want).await;
    }
    let want = matching(&|s: &str| s > "A#007" && s <= "A#012");
    check_paging(
        store,
        &pk,
        &between("A#005", "A#012"),
        Some("A#007"),
        2,
        &want,
    )
    .await;

    check_paging(store, &format!("{ns}#EMPTY"), &SkRange::All, None, 10, &[]).await;
}

async fn store_batch_get(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#BG");
    let items: Vec<Item> = (0..150)
        .map(|i| {
            Item::new(&pk, format!("K#{i:04}"), format!("v{i}"))
                .with_version(i)
                .with_expiry(i as i64)
        })
        .collect();
    store
        .batch_write(items.iter().cloned().map(WriteOp::Put).collect())
        .await
        .expect("batch_get setup");

    // 200 keys (more than one DynamoDB request), 50 missing, and a few duplicates.
    let mut keys: Vec<String> = (0..200).map(|i| format!("K#{i:04}")).collect();
    keys.extend(["K#0003".to_string(), "K#0199".to_string()]);
    let mut got = store.batch_get(&pk, &keys).await.expect("batch_get");
    got.sort_by(|a, b| a.sk.cmp(&b.sk));
    assert_eq!(
        got, items,
        "batch_get returns each existing item once, missing keys absent"
    );

    assert!(
        store.batch_get(&pk, &[]).await.expect("empty").is_empty(),
        "batch_get of no keys"
    );
    let missing = vec!["NOPE#1".to_string(), "NOPE#2".to_string()];
    assert!(
        store
            .batch_get(&pk, &missing)
            .await
            .expect("missing")
            .is_empty(),
        "batch_get of missing keys is empty"
    );
    let other = store
        .batch_get(&format!("{pk}X"), &keys[..10])
        .await
        .expect("other partition");
    assert!(other.is_empty(), "batch_get is scoped to its partition");
}

async fn store_batch_write(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#BW");
    let body = |i: usize, gen: u32| {
        format!(
            "{{\"i\":{i},\"gen\":{gen},\"pad\":\"{}\"}}",
            "p".repeat(360)
        )
    };
    let mut expected: BTreeMap<String, Item> = BTreeMap::new();
    let mut ops = Vec::new();
    for i in 0..300 {
        let item = Item::new(&pk, format!("S#{i:04}"), body(i, 1))
            .with_version(1)
            .with_expiry(2_000_000_000);
        expected.insert(item.sk.clone(), item.clone());
        ops.push(WriteOp::Put(item));
    }
    store
        .batch_write(ops)
        .await
        .expect("batch_write of 300 puts");
    store
        .batch_write(Vec::new())
        .await
        .expect("empty batch_write");

    // One batch mixing overwrites, deletes and a delete of a missing item.
    let mut ops = Vec::new();
    for i in 0..300usize {
        let sk = format!("S#{i:04}");
        if i % 3 == 0 {
            ops.push(WriteOp::Delete {
                pk: pk.clone(),
                sk: sk.clone(),
            });
            expected.remove(&sk);
        } else if i % 2 == 0 {
            let item = Item::new(&pk, &sk, body(i, 2)).with_version(2);
            expected.insert(sk, item.clone());
            ops.push(WriteOp::Put(item));
        }
    }
    ops.push(WriteOp::Delete {
        pk: pk.clone(),
        sk: "S#missing".into(),
    });
    store.batch_write(ops).await.expect("mixed batch_write");

    let mut got = Vec::new();
    classy_sync_core::ports::store::for_each_page(store, &pk, &SkRange::All, 64, |items| {
        got.extend(items);
        Ok(())
    })
    .await
    .expect("read back");
    let want: Vec<Item> = expected.into_values().collect();
    assert_eq!(got.len(), want.len(), "batch_write: item count after mix");
    assert_eq!(
        got, want,
        "batch_write: overwrites replace, deletes remove, others untouched"
    );
}

async fn store_transactions(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#TX");
    let put = |sk: &str, data: &str| WriteOp::Put(Item::new(&pk, sk, data));
    let del = |sk: &str| WriteOp::Delete {
        pk: pk.clone(),
        sk: sk.into(),
    };
    put_ok(
        store,
        Item::new(&pk, "C", "c").with_version(1),
        Condition::Always,
        "setup",
    )
    .await;
    put_ok(
        store,
        Item::new(&pk, "L", "old").with_expiry(10),
        Condition::Always,
        "setup",
    )
    .await;

    store
        .transact(vec![
            (put("A", "a"), Condition::NotExists),
            (put("B", "b"), Condition::Always),
            (del("C"), Condition::VersionIs(1)),
            (put("L", "new"), Condition::NotExistsOrExpired { now: 11 }),
        ])
        .await
        .expect("transaction whose conditions hold");
    assert_eq!(
        get(store, &pk, "A").await.map(|i| i.data).as_deref(),
        Some("a")
    );
    assert_eq!(
        get(store, &pk, "B").await.map(|i| i.data).as_deref(),
        Some("b")
    );
    assert_eq!(get(store, &pk, "C").await, None, "transact delete applied");
    assert_eq!(
        get(store, &pk, "L").await.map(|i| i.data).as_deref(),
        Some("new")
    );

    // Rollback: the last condition fails, so nothing before it is applied.
    expect_condition_failed(
        store
            .transact(vec![
                (put("X", "x"), Condition::Always),
                (del("A"), Condition::Always),
                (put("B", "b2"), Condition::VersionIs(99)),
            ])
            .await,
        &pk,
        "B",
        "transaction with a failing condition",
    );
    assert_eq!(
        get(store, &pk, "X").await,
        None,
        "rolled back: X not written"
    );
    assert!(
        get(store, &pk, "A").await.is_some(),
        "rolled back: A not deleted"
    );
    assert_eq!(
        get(store, &pk, "B").await.map(|i| i.data).as_deref(),
        Some("b"),
        "rolled back: B unchanged"
    );

    expect_condition_failed(
        store
            .transact(vec![
                (put("Y", "y"), Condition::NotExists),
                (del("MISSING"), Condition::VersionIs(1)),
            ])
            .await,
        &pk,
        "MISSING",
        "transaction whose conditional delete fails",
    );
    assert_eq!(
        get(store, &pk, "Y").await,
        None,
        "rolled back: Y not written"
    );

    let too_many: Vec<_> = (0..101)
        .map(|i| (put(&format!("T#{i:03}"), "t"), Condition::Always))
        .collect();
    expect_invalid(
        store.transact(too_many).await,
        "transaction of 101 operations",
    );
    assert_eq!(
        get(store, &pk, "T#000").await,
        None,
        "refused transaction wrote nothing"
    );
    let max: Vec<_> = (0..100)
        .map(|i| (put(&format!("T#{i:03}"), "t"), Condition::NotExists))
        .collect();
    store
        .transact(max)
        .await
        .expect("transaction of 100 operations");
    let page = store
        .query(&pk, &SkRange::prefix("T#"), None, 1000)
        .await
        .expect("query");
    assert_eq!(page.items.len(), 100, "all 100 transaction writes applied");

    expect_invalid(
        store
            .transact(vec![
                (put("D", "1"), Condition::Always),
                (put("D", "2"), Condition::Always),
            ])
            .await,
        "transaction touching one item twice (DynamoDB refuses it)",
    );
    store.transact(Vec::new()).await.expect("empty transaction");
}

async fn store_gsi1(store: &dyn Store, ns: &str) {
    let g1 = format!("{ns}#EMAIL1");
    let g2 = format!("{ns}#EMAIL2");
    let mut want = Vec::new();
    for org in ["ORG#1", "ORG#2", "ORG#3"] {
        let item = with_gsi1(
            Item::new(
                format!("{ns}#{org}"),
                "SUPPORTER#7",
                format!("{org} supporter"),
            ),
            &g1,
        );
        put_ok(store, item.clone(), Condition::Always, "gsi1 setup").await;
        want.push(item);
    }
    put_ok(
        store,
        with_gsi1(
            Item::new(format!("{ns}#ORG#4"), "SUPPORTER#8", "other"),
            &g2,
        ),
        Condition::Always,
        "gsi1 setup",
    )
    .await;
    put_ok(
        store,
        Item::new(format!("{ns}#ORG#5"), "SUPPORTER#9", "no email"),
        Condition::Always,
        "gsi1 setup",
    )
    .await;

    let sorted = |mut v: Vec<Item>| {
        v.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        v
    };
    let want = sorted(want);
    eventually("query_gsi1 finds the items of every partition", || async {
        let got = sorted(store.query_gsi1(&g1, 10).await.map_err(|e| e.to_string())?);
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    })
    .await;
    let two = store.query_gsi1(&g1, 2).await.expect("query_gsi1 limit 2");
    assert_eq!(two.len(), 2, "query_gsi1 honours limit");
    assert!(
        two.iter().all(|i| want.contains(i)),
        "limited answer is a subset"
    );
    assert!(
        store
            .query_gsi1(&format!("{ns}#NOBODY"), 10)
            .await
            .expect("query_gsi1")
            .is_empty(),
        "unknown gsi1 key"
    );

    // Removing gsi1 from an item, or deleting the item, removes it from the index.
    put_ok(
        store,
        Item::new(format!("{ns}#ORG#1"), "SUPPORTER#7", "email removed"),
        Condition::Always,
        "clear gsi1",
    )
    .await;
    store
        .delete(&format!("{ns}#ORG#2"), "SUPPORTER#7", Condition::Always)
        .await
        .expect("delete");
    let remaining = vec![want[2].clone()];
    eventually("query_gsi1 forgets cleared and deleted items", || async {
        let got = store.query_gsi1(&g1, 10).await.map_err(|e| e.to_string())?;
        if got == remaining {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    })
    .await;
}

async fn store_validation(store: &dyn Store, ns: &str) {
    let pk = format!("{ns}#VAL");
    expect_invalid(
        store.put(Item::new("", "A", "x"), Condition::Always).await,
        "empty partition key",
    );
    expect_invalid(
        store.put(Item::new(&pk, "", "x"), Condition::Always).await,
        "empty sort key",
    );
    expect_invalid(
        store
            .put(
                Item::new(&pk, "HUGE", "x".repeat(401 * 1024)),
                Condition::Always,
            )
            .await,
        "item over 400 KB",
    );
    expect_invalid(
        store.query(&pk, &SkRange::All, None, 0).await,
        "query with limit 0",
    );
    assert_eq!(
        get(store, &pk, "HUGE").await,
        None,
        "refused put wrote nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Queue
// ---------------------------------------------------------------------------------------------

/// Moves time forward for the queue under test: a [`ManualClock`] jumps, [`RealTime`] sleeps
/// (SQS, or a local queue on the system clock).
pub trait TimeControl: Send + Sync {
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()>;
}

impl TimeControl for ManualClock {
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        let by = chrono::Duration::from_std(by).expect("test durations fit chrono");
        ManualClock::advance(self, by);
        Box::pin(std::future::ready(()))
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RealTime;

impl TimeControl for RealTime {
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(by))
    }
}

/// What the queue under test promises beyond the port's minimum.
#[derive(Debug, Clone, Copy)]
pub struct QueueProfile {
    /// The queue's receive limit before dead-lettering (`QueueOptions::max_receives`,
    /// SQS `maxReceiveCount`). At least 3; keep it small for SQS: the suite receives a
    /// message that many times.
    pub max_receives: u32,
    /// Exact behaviour (the local queue): `stats` counts are exact and immediate, a
    /// superseded or used receipt is `StaleReceipt`, and a dedup id is free again once its
    /// message is deleted. SQS is approximate on all three: pass `false`.
    pub exact: bool,
    /// The queue honours `OutMessage::delay` (the local queue, SQS standard queues). When
    /// `false` the suite checks instead that a batch holding a delayed message is refused
    /// with `QueueError::Invalid` and enqueues nothing (SQS FIFO queues have no per-message
    /// delays; `SqsQueue` refuses such a batch before sending it).
    pub per_message_delay: bool,
    /// The queue drops a message whose dedup id matches a live message's (the local queue,
    /// SQS FIFO queues). When `false` the suite checks instead that dedup ids are ignored and
    /// every message is delivered (SQS standard queues cannot deduplicate).
    pub dedup: bool,
}

/// Visibility timeout used throughout; whole seconds so SQS can honour it.
const VIS: Duration = Duration::from_secs(2);
const PAST_VIS: Duration = Duration::from_secs(3);
const LONG_VIS: Duration = Duration::from_secs(60);

/// Runs every rule of [`JobQueue`] against `queue`, which must start empty (no live messages
/// and no dead letters). `time` must move the queue's notion of time.
pub async fn queue_conformance(
    queue: &dyn JobQueue,
    time: &dyn TimeControl,
    profile: QueueProfile,
) {
    assert!(
        profile.max_receives >= 3,
        "queue_conformance needs max_receives >= 3 (it receives one message three times)"
    );
    let ns = run_id();
    if profile.exact {
        assert_eq!(
            queue.stats().await.expect("stats"),
            Default::default(),
            "queue_conformance needs an empty queue"
        );
    }
    assert!(
        receive(queue, 10, VIS).await.is_empty(),
        "queue_conformance needs an empty queue"
    );
    queue_limits(queue).await;
    queue_visibility(queue, time, profile, &ns).await;
    if profile.per_message_delay {
        queue_delay(queue, time, &ns).await;
    } else {
        queue_delay_refused(queue, &ns).await;
    }
    queue_release(queue, time, profile, &ns).await;
    if profile.dedup {
        queue_dedup(queue, profile, &ns).await;
    } else {
        queue_no_dedup(queue, &ns).await;
    }
    queue_dead_letters(queue, profile, &ns).await;
    queue_age(queue, time, profile, &ns).await;
    queue_concurrent_receives(queue, &ns).await;
    if profile.exact {
        assert_eq!(
            queue.stats().await.expect("stats"),
            Default::default(),
            "the suite leaves the queue empty"
        );
    }
}

async fn receive(
    queue: &dyn JobQueue,
    max: usize,
    vis: Duration,
) -> Vec<classy_sync_core::ports::Received> {
    queue
        .receive(max, vis)
        .await
        .unwrap_or_else(|e| panic!("receive({max}) failed: {e}"))
}

/// Receives until `n` messages arrived (SQS short polls may return fewer than are visible).
async fn receive_n(
    queue: &dyn JobQueue,
    n: usize,
    vis: Duration,
) -> Vec<classy_sync_core::ports::Received> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= n {
            break;
        }
        got.extend(receive(queue, (n - got.len()).min(10), vis).await);
    }
    assert_eq!(got.len(), n, "expected {n} messages to be visible");
    got
}

async fn send(queue: &dyn JobQueue, messages: Vec<OutMessage>) {
    queue
        .send_batch(messages)
        .await
        .unwrap_or_else(|e| panic!("send_batch failed: {e}"));
}

async fn delete_all(queue: &dyn JobQueue, got: &[classy_sync_core::ports::Received]) {
    for r in got {
        queue
            .delete(&r.receipt)
            .await
            .unwrap_or_else(|e| panic!("delete {} failed: {e}", r.id));
    }
}

fn expect_stale<T: std::fmt::Debug>(r: Result<T, QueueError>, what: &str) {
    match r {
        Err(QueueError::StaleReceipt(_)) => {}
        other => panic!("{what}: expected StaleReceipt, got {other:?}"),
    }
}

fn expect_queue_invalid<T: std::fmt::Debug>(r: Result<T, QueueError>, what: &str) {
    match r {
        Err(QueueError::Invalid(_)) => {}
        other => panic!("{what}: expected QueueError::Invalid, got {other:?}"),
    }
}

async fn queue_limits(queue: &dyn JobQueue) {
    let eleven = (0..11).map(|i| OutMessage::new(format!("m{i}"))).collect();
    expect_queue_invalid(queue.send_batch(eleven).await, "send_batch of 11 messages");
    expect_queue_invalid(queue.receive(0, VIS).await, "receive of 0 messages");
    expect_queue_invalid(queue.receive(11, VIS).await, "receive of 11 messages");
    expect_queue_invalid(
        queue
            .send_batch(vec![OutMessage {
                delay: Duration::from_secs(16 * 60),
                ..OutMessage::new("late")
            }])
            .await,
        "delay over 15 minutes",
    );
    queue
        .send_batch(Vec::new())
        .await
        .expect("empty send_batch");
    assert!(
        receive(queue, 10, VIS).await.is_empty(),
        "refused batches enqueue nothing"
    );
}

async fn queue_visibility(
    queue: &dyn JobQueue,
    time: &dyn TimeControl,
    profile: QueueProfile,
    ns: &str,
) {
    let bodies: BTreeSet<String> = (0..3).map(|i| format!("{ns} vis {i}")).collect();
    send(queue, bodies.iter().map(OutMessage::new).collect()).await;

    let first = receive_n(queue, 3, VIS).await;
    let got: BTreeSet<String> = first.iter().map(|r| r.body.clone()).collect();
    assert_eq!(got, bodies, "receive returns the sent bodies");
    assert!(
        first.iter().all(|r| r.receive_count == 1),
        "first receive has receive_count 1: {first:?}"
    );
    let ids: HashSet<&str> = first.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "message ids are distinct");
    assert!(
        receive(queue, 10, VIS).await.is_empty(),
        "received messages are hidden for the visibility timeout"
    );
    if profile.exact {
        let s = queue.stats().await.expect("stats");
        assert_eq!(
            (s.visible, s.in_flight, s.dead),
            (0, 3, 0),
            "stats while in flight: {s:?}"
        );
    }

    time.advance(PAST_VIS).await;
    let second = receive_n(queue, 3, VIS).await;
    for r in &second {
        let before = first
            .iter()
            .find(|f| f.id == r.id)
            .expect("same messages again");
        assert_eq!(r.receive_count, 2, "receive_count counts receives");
        assert_eq!(r.body, before.body, "body unchanged");
        assert_ne!(
            r.receipt, before.receipt,
            "each receive issues a fresh receipt"
        );
    }
    if profile.exact {
        expect_stale(
            queue.delete(&first[0].receipt).await,
            "delete with a receipt superseded by a later receive",
        );
        expect_stale(
            queue.release(&first[0].receipt, Duration::ZERO).await,
            "release with a superseded receipt",
        );
    }
    delete_all(queue, &second).await;
    if profile.exact {
        expect_stale(
            queue.delete(&second[0].receipt).await,
            "delete of an already deleted message",
        );
        expect_stale(
            queue.delete("no-such-receipt").await,
            "delete with a made-up receipt",
        );
    } else {
        // SQS may accept an unknown receipt silently; when it refuses one, it says so.
        match queue.delete("no-such-receipt").await {
            Ok(()) | Err(QueueError::StaleReceipt(_)) => {}
            other => {
                panic!("delete with a made-up receipt: expected Ok or StaleReceipt, got {other:?}")
            }
        }
    }
    time.advance(PAST_VIS).await;
    assert!(
        receive(queue, 10, VIS).await.is_empty(),
        "deleted messages never come back"
    );
}

async fn queue_delay(queue: &dyn JobQueue, time: &dyn TimeControl, ns: &str) {
    let now_body = format!("{ns} now");
    let later_body = format!("{ns} later");
    send(
        queue,
        vec![
            OutMessage {
                delay: VIS,
                ..OutMessage::new(&later_body)
            },
            OutMessage::new(&now_body),
        ],
    )
    .await;
    let got = receive_n(queue, 1, LONG_VIS).await;
    assert_eq!(
        got[0].body, now_body,
        "a delayed message is not visible yet"
    );
    assert!(
        receive(queue, 10, LONG_VIS).await.is_empty(),
        "the delayed message stays hidden until its delay passes"
    );
    time.advance(PAST_VIS).await;
    let later = receive_n(queue, 1, LONG_VIS).await;
    assert_eq!(later[0].body, later_body, "visible after its delay");
    assert_eq!(later[0].receive_count, 1);
    delete_all(queue, &got).await;
    delete_all(queue, &later).await;
}

/// For a queue without per-message delays: a batch holding a delayed message is refused
/// whole, and the refused batch enqueues nothing.
async fn queue_delay_refused(queue: &dyn JobQueue, ns: &str) {
    expect_queue_invalid(
        queue
            .send_batch(vec![
                OutMessage::new(format!("{ns} undelayed")),
                OutMessage {
                    delay: VIS,
                    ..OutMessage::new(format!("{ns} delayed"))
                },
            ])
            .await,
        "a per-message delay on a queue without per-message delays",
    );
    assert!(
        receive(queue, 10, LONG_VIS).await.is_empty(),
        "a batch refused for its delay enqueues nothing"
    );
}

async fn queue_release(
    queue: &dyn JobQueue,
    time: &dyn TimeControl,
    profile: QueueProfile,
    ns: &str,
) {
    send(queue, vec![OutMessage::new(format!("{ns} release"))]).await;
    let r1 = receive_n(queue, 1, LONG_VIS).await.remove(0);
    queue
        .release(&r1.receipt, Duration::ZERO)
        .await
        .expect("release now");
    let r2 = receive_n(queue, 1, LONG_VIS).await.remove(0);
    assert_eq!(
        (r2.id.as_str(), r2.receive_count),
        (r1.id.as_str(), 2),
        "released message comes back"
    );
    if profile.exact {
        expect_stale(
            queue.release(&r1.receipt, Duration::ZERO).await,
            "release with a superseded receipt",
        );
    }
    queue
        .release(&r2.receipt, VIS)
        .await
        .expect("release with delay");
    assert!(
        receive(queue, 10, LONG_VIS).await.is_empty(),
        "a message released with a delay stays hidden"
    );
    time.advance(PAST_VIS).await;
    let r3 = receive_n(queue, 1, LONG_VIS).await.remove(0);
    assert_eq!(
        (r3.id.as_str(), r3.receive_count),
        (r1.id.as_str(), 3),
        "visible after the delay"
    );
    delete_all(queue, &[r3]).await;
}

async fn queue_dedup(queue: &dyn JobQueue, profile: QueueProfile, ns: &str) {
    let dedup = |body: String, id: &str| OutMessage {
        dedup_id: Some(format!("{ns}-{id}")),
        group_id: Some(format!("{ns}-org")),
        ..OutMessage::new(body)
    };
    send(
        queue,
        vec![
            dedup(format!("{ns} d1 first"), "d1"),
            dedup(format!("{ns} d1 again"), "d1"),
            OutMessage::new(format!("{ns} plain")),
        ],
    )
    .await;
    send(queue, vec![dedup(format!("{ns} d1 later"), "d1")]).await;
    let got = receive_n(queue, 2, LONG_VIS).await;
    let bodies: BTreeSet<String> = got.iter().map(|r| r.body.clone()).collect();
    assert_eq!(
        bodies,
        [format!("{ns} d1 first"), format!("{ns} plain")]
            .into_iter()
            .collect(),
        "a message whose dedup id is live is dropped; the first one stays"
    );
    assert!(
        receive(queue, 10, LONG_VIS).await.is_empty(),
        "no duplicates enqueued"
    );
    delete_all(queue, &got).await;

    if profile.exact {
        send(queue, vec![dedup(format!("{ns} d1 after delete"), "d1")]).await;
        let again = receive_n(queue, 1, LONG_VIS).await;
        assert_eq!(
            again[0].body,
            format!("{ns} d1 after delete"),
            "a dedup id is free again once its message is deleted"
        );
        delete_all(queue, &again).await;
    }
}

/// For a queue without deduplication: messages sharing a dedup id, in one batch or in
/// two, are all delivered, each once.
async fn queue_no_dedup(queue: &dyn JobQueue, ns: &str) {
    let dedup = |body: String| OutMessage {
        dedup_id: Some(format!("{ns}-d1")),
        group_id: Some(format!("{ns}-org")),
        ..OutMessage::new(body)
    };
    send(
        queue,
        vec![
            dedup(format!("{ns} d1 first")),
            dedup(format!("{ns} d1 again")),
        ],
    )
    .await;
    send(queue, vec![dedup(format!("{ns} d1 later"))]).await;
    let got = receive_n(queue, 3, LONG_VIS).await;
    let bodies: BTreeSet<String> = got.iter().map(|r| r.body.clone()).collect();
    assert_eq!(
        bodies,
        ["first", "again", "later"]
            .map(|b| format!("{ns} d1 {b}"))
            .into_iter()
            .collect(),
        "a queue without deduplication delivers every message despite equal dedup ids"
    );
    assert!(
        receive(queue, 10, LONG_VIS).await.is_empty(),
        "each message is delivered once"
    );
    delete_all(queue, &got).await;
}

async fn queue_dead_letters(queue: &dyn JobQueue, profile: QueueProfile, ns: &str) {
    let body = format!("{ns} poison");
    send(queue, vec![OutMessage::new(&body)]).await;
    let mut id = String::new();
    for n in 1..=profile.max_receives {
        let r = receive_n(queue, 1, LONG_VIS).await.remove(0);
        assert_eq!(r.receive_count, n, "receive {n} of the poison message");
        id = r.id.clone();
        queue
            .release(&r.receipt, Duration::ZERO)
            .await
            .expect("release");
    }
    assert!(
        receive(queue, 10, LONG_VIS).await.is_empty(),
        "after max_receives ({}) receives the message is dead-lettered, not delivered",
        profile.max_receives
    );
    eventually("the poison message shows up in dead_letters", || async {
        let dead = queue.dead_letters(10).await.map_err(|e| e.to_string())?;
        match dead.as_slice() {
            [d] if d.id == id && d.body == body && d.receive_count >= profile.max_receives => {
                Ok(())
            }
            _ => Err(format!("dead_letters: {dead:?}")),
        }
    })
    .await;
    if profile.exact {
        let s = queue.stats().await.expect("stats");
        assert_eq!(
            (s.visible, s.in_flight, s.dead),
            (0, 0, 1),
            "stats with one dead letter: {s:?}"
        );
        assert_eq!(
            s.oldest_age_secs, None,
            "dead letters are not live messages"
        );
        let dead = queue.dead_letters(10).await.expect("dead_letters");
        assert_eq!(
            dead[0].receive_count, profile.max_receives,
            "dead letter keeps its receive count"
        );
    }

    let moved = queue
        .redrive(&[id.clone(), format!("{ns}-no-such-id")])
        .await
        .expect("redrive");
    assert_eq!(
        moved, 1,
        "redrive moves the dead letter and ignores unknown ids"
    );
    let back = receive_n(queue, 1, LONG_VIS).await.remove(0);
    assert_eq!(
        (back.body.as_str(), back.receive_count),
        (body.as_str(), 1),
        "a redriven message starts over with receive_count 1"
    );
    delete_all(queue, &[back]).await;
    assert!(
        queue
            .dead_letters(10)
            .await
            .expect("dead_letters")
            .is_empty(),
        "dead letters are empty after redrive"
    );
    assert_eq!(
        queue.redrive(&[id]).await.expect("redrive"),
        0,
        "redriving a message that is not dead moves nothing"
    );
}

async fn queue_age(queue: &dyn JobQueue, time: &dyn TimeControl, profile: QueueProfile, ns: &str) {
    send(queue, vec![OutMessage::new(format!("{ns} old"))]).await;
    time.advance(PAST_VIS).await;
    if profile.exact {
        let s = queue.stats().await.expect("stats");
        assert_eq!((s.visible, s.in_flight, s.dead), (1, 0, 0), "stats: {s:?}");
        assert!(
            s.oldest_age_secs.is_some_and(|a| a >= PAST_VIS.as_secs()),
            "oldest_age_secs counts from the send: {s:?}"
        );
    }
    let got = receive_n(queue, 1, LONG_VIS).await;
    delete_all(queue, &got).await;
}

/// Concurrent receivers on one handle never get the same message while it is in flight.
async fn queue_concurrent_receives(queue: &dyn JobQueue, ns: &str) {
    const N: usize = 30;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10) {
        send(
            queue,
            chunk
                .iter()
                .map(|i| OutMessage::new(format!("{ns} c{i}")))
                .collect(),
        )
        .await;
    }
    let receivers = (0..4).map(|_| async {
        let mut got = Vec::new();
        let mut empty = 0;
        while empty < 3 {
            let batch = receive(queue, 10, LONG_VIS).await;
            if batch.is_empty() {
                empty += 1;
            }
            got.extend(batch);
        }
        got
    });
    let all: Vec<_> = join_all(receivers).await.into_iter().flatten().collect();
    let ids: HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        all.len(),
        "a message was delivered to two receivers at once"
    );
    assert_eq!(all.len(), N, "every message delivered once");
    delete_all(queue, &all).await;
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Runs the rules of [`SecretStore`]; names are `classy-sync-conformance/<run id>/...`.
pub async fn secrets_conformance(secrets: &dyn SecretStore) {
    let ns = format!("classy-sync-conformance/{}", run_id());
    let name = format!("{ns}/classy");
    let value = "s3cr3t-VALUE-do-not-print";

    match secrets.get(&name).await {
        Err(SecretError::NotFound(n)) => assert_eq!(n, name, "NotFound names the secret"),
        other => panic!("get of a missing secret: expected NotFound, got {other:?}"),
    }
    secrets
        .put(&name, SecretString::from(value.to_owned()))
        .await
        .expect("put");
    let got = secrets.get(&name).await.expect("get");
    assert_eq!(got.expose_secret(), value, "get returns the stored value");
    assert!(
        !format!("{got:?}").contains(value),
        "Debug of a secret must not show it"
    );

    secrets
        .put(&name, SecretString::from("rotated".to_owned()))
        .await
        .expect("overwrite");
    assert_eq!(
        secrets.get(&name).await.expect("get").expose_secret(),
        "rotated"
    );

    let other = format!("{ns}/mailchimp");
    secrets
        .put(&other, SecretString::from("other".to_owned()))
        .await
        .expect("put");
    secrets.delete(&name).await.expect("delete");
    assert!(
        matches!(secrets.get(&name).await, Err(SecretError::NotFound(_))),
        "deleted secret is gone"
    );
    match secrets.delete(&name).await {
        Err(e @ SecretError::NotFound(_)) => {
            assert!(
                !e.to_string().contains("rotated"),
                "errors never carry values"
            )
        }
        other => panic!("delete of a missing secret: expected NotFound, got {other:?}"),
    }
    assert_eq!(
        secrets.get(&other).await.expect("get").expose_secret(),
        "other",
        "deleting one secret keeps the others"
    );
    secrets.delete(&other).await.expect("cleanup");
}
