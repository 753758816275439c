//! The Classy client over real sockets against the in-process sandbox: tokens, retries,
//! faults, rate limiting and paging.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync_classy::{ClassyClient, ClassyConfig};
use classy_sync_core::domain::{Entity, OrgId, Timestamp};
use classy_sync_core::ports::{
    AppCredentials, ClassySource, Filter, FilterOp, ListQuery, Sort, SourceError,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

async fn sandbox(cfg: SandboxConfig) -> RunningSandbox {
    classy_sandbox::start(cfg).await.expect("sandbox starts")
}

async fn default_sandbox() -> RunningSandbox {
    sandbox(SandboxConfig::default()).await
}

/// Fast retries, no client-side rate limit unless a test sets one.
fn client_with(sb: &RunningSandbox, tweak: impl FnOnce(&mut ClassyConfig)) -> ClassyClient {
    let mut cfg = ClassyConfig {
        api_base_url: sb.api_base_url(),
        auth_url: sb.auth_url(),
        requests_per_minute: 0,
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(100),
        request_timeout: Duration::from_secs(10),
        allow_http: true,
        ..ClassyConfig::default()
    };
    tweak(&mut cfg);
    ClassyClient::new(cfg).expect("valid config")
}

fn client(sb: &RunningSandbox) -> ClassyClient {
    client_with(sb, |_| {})
}

/// Credentials and organizations of the sandbox's `i`-th application.
fn app(sb: &RunningSandbox, i: usize) -> (AppCredentials, Vec<OrgId>) {
    let apps = sb.apps();
    let a = &apps[i];
    (
        AppCredentials {
            client_id: a.client_id.clone(),
            client_secret: SecretString::from(a.client_secret.clone()),
        },
        a.organizations.iter().map(|o| *o as OrgId).collect(),
    )
}

fn admin() -> reqwest::Client {
    reqwest::Client::new()
}

async fn script(sb: &RunningSandbox, next: Value) {
    let r = admin()
        .post(format!("{}/admin/faults/script", sb.base_url()))
        .json(&json!({ "next": next }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "script: {}", r.status());
}

async fn counters(sb: &RunningSandbox) -> Value {
    admin()
        .get(format!("{}/admin/counters", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Token requests the sandbox has seen.
async fn auth_calls(sb: &RunningSandbox) -> u64 {
    let c = counters(sb).await;
    c["by_endpoint"]["oauth2/auth"]
        .as_u64()
        .expect("oauth2/auth counter")
}

async fn total_calls(sb: &RunningSandbox) -> u64 {
    counters(sb).await["total"].as_u64().expect("total")
}

async fn truth(sb: &RunningSandbox, org: OrgId, entity: Entity) -> Vec<Value> {
    admin()
        .get(format!(
            "{}/admin/orgs/{org}/{}",
            sb.base_url(),
            entity.api_path()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn all_pages(
    c: &ClassyClient,
    creds: &AppCredentials,
    org: OrgId,
    entity: Entity,
    mut query: ListQuery,
) -> Vec<Value> {
    let mut out = Vec::new();
    query.page = 1;
    loop {
        let page = c.list_page(creds, org, entity, &query).await.unwrap();
        assert_eq!(page.current_page, query.page);
        for r in &page.records {
            out.push(serde_json::from_str::<Value>(r.get()).unwrap());
        }
        if !page.has_next {
            assert_eq!(page.current_page, page.last_page);
            assert_eq!(page.total as usize, out.len());
            return out;
        }
        query.page += 1;
    }
}

fn ids(records: &[Value]) -> BTreeSet<u64> {
    records.iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

fn one(per_page: u32) -> ListQuery {
    ListQuery {
        per_page,
        ..ListQuery::default()
    }
}

#[tokio::test]
async fn one_token_serves_every_org_of_an_app() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    assert!(
        orgs.len() >= 2,
        "sandbox default should give the app two orgs"
    );
    let c = client(&sb);
    for org in &orgs {
        for entity in Entity::ALL {
            c.list_page(&creds, *org, entity, &one(5)).await.unwrap();
        }
    }
    assert_eq!(auth_calls(&sb).await, 1);
    let expected = 1 + 4 * orgs.len() as u64;
    assert_eq!(c.calls_made(), expected);
    assert_eq!(total_calls(&sb).await, expected);
    sb.shutdown().await;
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (c, creds, org) = (c.clone(), creds.clone(), orgs[i % orgs.len()]);
            tokio::spawn(async move { c.list_page(&creds, org, Entity::Supporters, &one(1)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(auth_calls(&sb).await, 1);
    assert_eq!(c.calls_made(), 9);
    sb.shutdown().await;
}

#[tokio::test]
async fn revoked_token_is_replaced_once() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    let r = admin()
        .post(format!("{}/admin/tokens/revoke", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    assert_eq!(auth_calls(&sb).await, 2);
    // 1 auth + 1 list, then 1 refused list + 1 auth + 1 list.
    assert_eq!(c.calls_made(), 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_second_refusal_is_unauthorized() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    script(&sb, json!([{ "revoke": true }, { "revoke": true }])).await;
    let err = c
        .list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Unauthorized { .. }),
        "expected Unauthorized, got {err:?}"
    );
    assert_eq!(auth_calls(&sb).await, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_before_expiry() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let r = admin()
        .put(format!("{}/admin/token-lifetime", sb.base_url()))
        .json(&json!({ "secs": 2 }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let c = client(&sb);
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    c.list_page(&creds, orgs[1], Entity::Supporters, &one(1))
        .await
        .unwrap();
    assert_eq!(auth_calls(&sb).await, 1, "reused within its lifetime");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    assert_eq!(auth_calls(&sb).await, 2, "refreshed after expiry");
    // Refreshed proactively: no request was refused with 401.
    assert_eq!(c.calls_made(), 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limited_answer_waits_retry_after() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    script(&sb, json!([{ "status": 429, "retry_after": 1 }])).await;
    let start = Instant::now();
    let page = c
        .list_page(&creds, orgs[0], Entity::Transactions, &one(3))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(page.records.len(), 3);
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "waited {elapsed:?}");
    assert_eq!(c.calls_made(), 4);
    sb.shutdown().await;
}

#[tokio::test]
async fn server_errors_drops_and_malformed_bodies_are_retried() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    script(
        &sb,
        json!([{ "status": 500 }, { "drop": true }, { "malformed": true }, { "status": 503 }]),
    )
    .await;
    let page = c
        .list_page(&creds, orgs[0], Entity::Supporters, &one(10))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 10);
    assert_eq!(c.calls_made(), 2 + 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client_with(&sb, |c| c.request_timeout = Duration::from_millis(500));
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    script(&sb, json!([{ "slow_ms": 2000 }])).await;
    let page = c
        .list_page(&creds, orgs[0], Entity::Campaigns, &one(2))
        .await
        .unwrap();
    assert!(!page.records.is_empty());
    assert_eq!(c.calls_made(), 4);
    sb.shutdown().await;
}

#[tokio::test]
async fn persistent_failures_exhaust_the_retries() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client_with(&sb, |c| c.max_retries = 2);
    c.list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap();
    script(
        &sb,
        json!([{ "status": 500 }, { "status": 502 }, { "status": 500 }]),
    )
    .await;
    let err = c
        .list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap_err();
    match &err {
        SourceError::Exhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(last.contains("500"), "{last}");
            assert!(last.contains(&format!("org {}", orgs[0])), "{last}");
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert_eq!(c.calls_made(), 2 + 3);

    script(
        &sb,
        json!([{ "malformed": true }, { "malformed": true }, { "malformed": true }]),
    )
    .await;
    let err = c
        .list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap_err();
    match &err {
        SourceError::Decode(m) => {
            assert!(m.contains("/organizations/"), "{m}");
            assert!(!m.contains("per_page"), "query leaked into {m}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn another_apps_org_is_forbidden_without_retry() {
    let sb = sandbox(SandboxConfig {
        apps: 2,
        orgs: 2,
        ..SandboxConfig::default()
    })
    .await;
    let (creds, own) = app(&sb, 0);
    let (_, theirs) = app(&sb, 1);
    assert!(!theirs.is_empty() && !own.contains(&theirs[0]));
    let c = client(&sb);
    let err = c
        .list_page(&creds, theirs[0], Entity::Transactions, &one(1))
        .await
        .unwrap_err();
    match &err {
        SourceError::Forbidden(m) => {
            assert!(m.contains(&theirs[0].to_string()), "{m}");
            assert!(m.contains("transactions"), "{m}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(c.calls_made(), 2, "one token request, one refused call");
    assert!(matches!(
        c.verify(&creds, theirs[0]).await,
        Err(SourceError::Forbidden(_))
    ));
    c.verify(&creds, own[0]).await.unwrap();
    sb.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_is_unauthorized_and_never_echoed() {
    let sb = default_sandbox().await;
    let (mut creds, orgs) = app(&sb, 0);
    let wrong = "wrong-s3cret-value-0123456789";
    creds.client_secret = SecretString::from(wrong.to_string());
    let c = client(&sb);
    let err = c
        .list_page(&creds, orgs[0], Entity::Supporters, &one(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Unauthorized { .. }),
        "expected Unauthorized, got {err:?}"
    );
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{creds:?}"),
        format!("{c:?}"),
    ] {
        assert!(!text.contains(wrong), "secret leaked: {text}");
    }
    assert_eq!(c.calls_made(), 1, "bad credentials are not retried");
    let err = c.verify(&creds, orgs[0]).await.unwrap_err();
    assert!(!err.to_string().contains(wrong));
    sb.shutdown().await;
}

#[tokio::test]
async fn access_tokens_never_appear_in_errors() {
    let sb = sandbox(SandboxConfig {
        apps: 2,
        ..SandboxConfig::default()
    })
    .await;
    let (creds, _) = app(&sb, 0);
    let (_, theirs) = app(&sb, 1);
    let c = client(&sb);
    // Grab the token the sandbox issues to compare against the error text.
    let token: Value = admin()
        .post(sb.auth_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", sb.apps()[0].client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let err = c
        .list_page(&creds, theirs[0], Entity::Supporters, &one(1))
        .await
        .unwrap_err();
    let access = token["access_token"].as_str().unwrap();
    let secret = sb.apps()[0].client_secret.clone();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(access), "token leaked: {text}");
        assert!(!text.contains(&secret), "secret leaked: {text}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn client_side_limiter_paces_requests() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client_with(&sb, |c| c.requests_per_minute = 120);
    let start = Instant::now();
    for i in 0..5 {
        c.list_page(&creds, orgs[i % orgs.len()], Entity::Supporters, &one(1))
            .await
            .unwrap();
    }
    // 6 requests (token included) at 2 a second: at least 2.5 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(2400), "{elapsed:?}");
    assert_eq!(c.calls_made(), 6);
    sb.shutdown().await;
}

#[tokio::test]
async fn paging_returns_exactly_the_admin_truth() {
    let sb = default_sandbox().await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    for entity in Entity::ALL {
        let expected = truth(&sb, orgs[0], entity).await;
        let got = all_pages(&c, &creds, orgs[0], entity, one(100)).await;
        assert_eq!(got.len(), expected.len(), "{entity}");
        assert_eq!(ids(&got), ids(&expected), "{entity}");
    }
    // Small pages, sorted: same set, no duplicates.
    let expected = truth(&sb, orgs[1], Entity::Supporters).await;
    let query = ListQuery {
        sort: Some(Sort::asc("updated_at")),
        ..one(7)
    };
    let got = all_pages(&c, &creds, orgs[1], Entity::Supporters, query).await;
    assert_eq!(got.len(), expected.len());
    assert_eq!(ids(&got), ids(&expected));
    let stamps: Vec<Timestamp> = got
        .iter()
        .map(|r| Timestamp::parse(r["updated_at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "not sorted");
    sb.shutdown().await;
}

#[tokio::test]
async fn timestamp_filter_is_encoded_once_and_applied() {
    let sb = sandbox(SandboxConfig {
        quirks: classy_sandbox::Quirks {
            strict_timestamps: true,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    let all = truth(&sb, orgs[0], Entity::Transactions).await;
    let mut stamps: Vec<Timestamp> = all
        .iter()
        .map(|r| Timestamp::parse(r["updated_at"].as_str().unwrap()).unwrap())
        .collect();
    stamps.sort();
    let cut = stamps[stamps.len() / 2];
    let expected: BTreeSet<u64> = all
        .iter()
        .filter(|r| Timestamp::parse(r["updated_at"].as_str().unwrap()).unwrap() >= cut)
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    let query = ListQuery {
        filter: Some(Filter::new("updated_at", FilterOp::Ge, cut.to_classy())),
        sort: Some(Sort::asc("updated_at")),
        ..one(50)
    };
    let got = all_pages(&c, &creds, orgs[0], Entity::Transactions, query).await;
    assert_eq!(ids(&got), expected);
    sb.shutdown().await;
}

#[tokio::test]
async fn organizations_lists_the_apps_orgs() {
    let sb = sandbox(SandboxConfig {
        apps: 2,
        orgs: 3,
        ..SandboxConfig::default()
    })
    .await;
    let (creds, orgs) = app(&sb, 0);
    let c = client(&sb);
    let listed = c.organizations(&creds).await.unwrap();
    let listed: BTreeSet<u64> = listed.iter().map(|o| o["id"].as_u64().unwrap()).collect();
    assert_eq!(listed, orgs.iter().copied().collect());
    sb.shutdown().await;
}
