//! One Classy request budget per application, shared by processes: two Classy clients (two
//! processes: each its own `StoreBudget` on its own connection to one SQLite file) against the
//! sandbox's fixed-window rate limit, time scaled 10× (12 requests per 6 s window = 120 a
//! minute). A control pair of clients with a limiter each at the full budget is refused.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync_classy::{ClassyClient, ClassyConfig};
use classy_sync_core::domain::budget::BudgetSpec;
use classy_sync_core::domain::{Entity, OrgId};
use classy_sync_core::engine::budget::StoreBudget;
use classy_sync_core::ports::{
    AppCredentials, ClassySource, ListQuery, RateBudget, Store, SystemClock,
};
use classy_sync_local::SqliteStore;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PER_WINDOW: u32 = 12;
const WINDOW_MS: u64 = 6_000;

async fn limited_sandbox() -> RunningSandbox {
    let sb = classy_sandbox::start(SandboxConfig {
        supporters: 50,
        transactions: 20,
        plans: 5,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let r = reqwest::Client::new()
        .put(format!("{}/admin/rate-limit", sb.base_url()))
        .json(&json!({"per_minute": PER_WINDOW, "window_ms": WINDOW_MS}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    sb
}

fn config(sb: &RunningSandbox, per_minute: u32) -> ClassyConfig {
    ClassyConfig {
        api_base_url: sb.api_base_url(),
        auth_url: sb.auth_url(),
        requests_per_minute: per_minute,
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(100),
        request_timeout: Duration::from_secs(10),
        max_retries: 10,
        allow_http: true,
        ..ClassyConfig::default()
    }
}

fn app(sb: &RunningSandbox) -> (AppCredentials, Vec<OrgId>) {
    let a = &sb.apps()[0];
    (
        AppCredentials {
            client_id: a.client_id.clone(),
            client_secret: SecretString::from(a.client_secret.clone()),
        },
        a.organizations.iter().map(|o| *o as OrgId).collect(),
    )
}

async fn counters(sb: &RunningSandbox) -> Value {
    reqwest::Client::new()
        .get(format!("{}/admin/counters", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Each client reads pages of its own organization as fast as it is let, for `run`.
async fn read_for(sb: &RunningSandbox, clients: Vec<ClassyClient>, run: Duration) -> (u64, u64) {
    let (creds, orgs) = app(sb);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let (creds, org) = (creds.clone(), orgs[i % orgs.len()]);
        tasks.push(tokio::spawn(async move {
            let query = ListQuery {
                per_page: 5,
                ..ListQuery::default()
            };
            while start.elapsed() < run {
                c.list_page(&creds, org, Entity::Supporters, &query)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = counters(sb).await;
    (
        c["total"].as_u64().unwrap(),
        c["by_status"]["429"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_the_budget_are_never_refused() {
    let run = Duration::from_secs(13);
    // Control: each process paces itself at the whole budget (2 a second, 4 together).
    let control_sb = limited_sandbox().await;
    let per_process: Vec<ClassyClient> = (0..2)
        .map(|_| ClassyClient::new(config(&control_sb, 120)).unwrap())
        .collect();
    // Shared: each process leases from the one bucket in the data directory's store.
    let shared_sb = limited_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = BudgetSpec::new(PER_WINDOW, WINDOW_MS);
    let budgets: Vec<Arc<StoreBudget>> = (0..2)
        .map(|_| {
            let store: Arc<dyn Store> =
                Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap());
            Arc::new(StoreBudget::new(store, Arc::new(SystemClock), spec))
        })
        .collect();
    let shared: Vec<ClassyClient> = budgets
        .iter()
        .map(|b| {
            let b: Arc<dyn RateBudget> = b.clone();
            ClassyClient::with_budget(config(&shared_sb, 120), b).unwrap()
        })
        .collect();
    let (control, shared) = tokio::join!(
        read_for(&control_sb, per_process, run),
        read_for(&shared_sb, shared, run)
    );
    println!("per-process limiters: {control:?}; shared budget: {shared:?} (requests, 429s)");
    assert!(control.1 > 0, "the control must be refused: {control:?}");
    assert_eq!(shared.1, 0, "refused with a shared budget: {shared:?}");
    // And the budget is used: at least 80% of what 13 s allow at the bucket's rate.
    let allowed = spec.rate_per_ms() * run.as_millis() as f64;
    assert!(
        shared.0 as f64 >= 0.8 * allowed,
        "{shared:?} of {allowed:.0}"
    );
    control_sb.shutdown().await;
    shared_sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_process_holds_back_the_other() {
    let sb = classy_sandbox::start(SandboxConfig::default())
        .await
        .unwrap();
    let (creds, orgs) = app(&sb);
    let dir = tempfile::tempdir().unwrap();
    let spec = BudgetSpec::new(6000, 60_000);
    let clients: Vec<ClassyClient> = (0..2)
        .map(|_| {
            let store: Arc<dyn Store> =
                Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap());
            let b: Arc<dyn RateBudget> =
                Arc::new(StoreBudget::new(store, Arc::new(SystemClock), spec));
            ClassyClient::with_budget(config(&sb, 6000), b).unwrap()
        })
        .collect();
    let one = ListQuery {
        per_page: 1,
        ..ListQuery::default()
    };
    clients[1]
        .list_page(&creds, orgs[0], Entity::Supporters, &one)
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/admin/faults/script", sb.base_url()))
        .json(&json!({"next": [{"status": 429, "retry_after": 2}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let started = Instant::now();
    // Process 0 is refused and records the wait; process 1 waits it out too once the
    // tokens it holds (at most one second's) are gone.
    let (a, b) = tokio::join!(
        clients[0].list_page(&creds, orgs[0], Entity::Supporters, &one),
        async {
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            let page = clients[1]
                .list_page(&creds, orgs[1], Entity::Supporters, &one)
                .await;
            (page, started.elapsed())
        }
    );
    a.unwrap();
    let (page, b_done) = b;
    page.unwrap();
    // Without the shared block it would have been answered at once, at about 1.1 s.
    assert!(b_done >= Duration::from_millis(1_900), "{b_done:?}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_x_ratelimit_remaining_pauses_every_process() {
    use classy_sync_core::domain::budget::Bucket;
    use classy_sync_core::domain::keys::{budget_sk, BUDGET_PK};
    let sb = classy_sandbox::start(SandboxConfig {
        rate_limit_per_minute: 15,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (creds, orgs) = app(&sb);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap());
    // Our budget believes in far more than the server allows (blocks of 10).
    let b: Arc<dyn RateBudget> = Arc::new(StoreBudget::new(
        store.clone(),
        Arc::new(SystemClock),
        BudgetSpec::new(6000, 60_000),
    ));
    let c = ClassyClient::with_budget(config(&sb, 6000), b).unwrap();
    let one = ListQuery {
        per_page: 1,
        ..ListQuery::default()
    };
    let blocked = || async {
        let item = store
            .get(BUDGET_PK, &budget_sk(&creds.client_id))
            .await
            .unwrap();
        item.unwrap().parse::<Bucket>().unwrap().blocked_until_ms
    };
    for _ in 0..5 {
        c.list_page(&creds, orgs[0], Entity::Supporters, &one)
            .await
            .unwrap();
    }
    assert_eq!(blocked().await, 0, "10 left of 15: no pause yet");
    c.list_page(&creds, orgs[0], Entity::Supporters, &one)
        .await
        .unwrap();
    // 9 left, fewer than a block: the bucket is paused for everyone.
    assert!(blocked().await > 0);
    sb.shutdown().await;
}

/// The `CLASSY_*` variables of a client against the sandbox, budget `per_minute`.
fn env_of(sb: &RunningSandbox, per_minute: u32) -> impl Fn(&str) -> Option<String> {
    let vars = [
        ("CLASSY_API_BASE_URL", sb.api_base_url()),
        ("CLASSY_AUTH_URL", sb.auth_url()),
        ("CLASSY_SYNC_ALLOW_DEV_URLS", "1".to_string()),
        ("CLASSY_RATE_LIMIT_PER_MINUTE", per_minute.to_string()),
    ];
    move |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
}

/// The composition roots build the Classy client on their store's budget: two local roots on
/// one data directory (two processes) and an AWS root on DynamoDB (moto) all write the
/// application's bucket, and `0` leaves the store alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roots_build_the_client_on_their_stores_budget() {
    use classy_sync_aws::AwsSettings;
    use classy_sync_core::domain::keys::{budget_sk, BUDGET_PK};
    use classy_sync_runtime::aws::AwsRoot;
    use classy_sync_runtime::local::LocalRoot;
    let sb = classy_sandbox::start(SandboxConfig::default())
        .await
        .unwrap();
    let (creds, orgs) = app(&sb);
    let one = ListQuery {
        per_page: 1,
        ..ListQuery::default()
    };
    let key = budget_sk(&creds.client_id);

    let dir = tempfile::tempdir().unwrap();
    let unlimited = LocalRoot::open(dir.path()).unwrap();
    unlimited
        .classy_from(env_of(&sb, 0))
        .unwrap()
        .list_page(&creds, orgs[0], Entity::Supporters, &one)
        .await
        .unwrap();
    assert!(unlimited
        .store
        .get(BUDGET_PK, &key)
        .await
        .unwrap()
        .is_none());
    let mut versions = Vec::new();
    for _ in 0..2 {
        let root = LocalRoot::open(dir.path()).unwrap();
        root.classy_from(env_of(&sb, 1800))
            .unwrap()
            .list_page(&creds, orgs[0], Entity::Supporters, &one)
            .await
            .unwrap();
        let item = root.store.get(BUDGET_PK, &key).await.unwrap().unwrap();
        versions.push(item.version);
    }
    // The second process leased from the bucket the first one created.
    assert_eq!(versions, vec![1, 2]);

    let moto = classy_sync_tests::moto::MotoServer::start();
    let table = "classy-sync-test";
    classy_sync_tests::aws_setup::create_table(&moto.dynamodb().await, table)
        .await
        .unwrap();
    let settings = AwsSettings {
        table: table.into(),
        queue_url: "unused".into(),
        dlq_url: None,
        event_bus: "unused".into(),
        secret_prefix: "classy-sync/".into(),
        secret_ttl: Duration::from_secs(300),
    };
    let root = AwsRoot::from_sdk(moto.sdk_config().await, settings);
    root.classy_from(env_of(&sb, 1800))
        .unwrap()
        .list_page(&creds, orgs[0], Entity::Supporters, &one)
        .await
        .unwrap();
    assert!(root.store.get(BUDGET_PK, &key).await.unwrap().is_some());
    sb.shutdown().await;
}
