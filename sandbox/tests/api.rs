//! End-to-end behaviour of the sandbox over real sockets.

mod common;

use classy_sandbox::SandboxConfig;
use common::{http, start, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn small() -> SandboxConfig {
    SandboxConfig {
        supporters: 230,
        transactions: 450,
        plans: 30,
        ..Default::default()
    }
}

fn ids(records: &[Value]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn auth_form_json_errors_and_expiry() {
    let h = start(SandboxConfig {
        token_lifetime_secs: 1,
        ..small()
    })
    .await;
    let auth = h.sandbox.auth_url();
    let r = h
        .http
        .post(&auth)
        .json(&json!({"grant_type": "client_credentials", "client_id": h.client_id, "client_secret": h.secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 1);

    let r = h
        .http
        .post(&auth)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &h.client_id),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "invalid_client", "error_description": "Client authentication failed"})
    );
    let r = h
        .http
        .post(&auth)
        .form(&[
            ("grant_type", "password"),
            ("client_id", &h.client_id),
            ("client_secret", &h.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let path = format!("/organizations/{}/supporters", h.org);
    let r = h
        .http
        .get(format!("{}{path}", h.sandbox.api_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");
    assert_eq!(h.get("nope", &path).await.0, 401);

    let token = h.token().await;
    assert_eq!(h.get(&token, &path).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = h.get(&token, &path).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // Longer lifetime, then an admin revocation.
    h.admin_send(Method::PUT, "/token-lifetime", json!({"secs": 60}))
        .await;
    let token = h.token().await;
    assert_eq!(h.get(&token, &path).await.0, 200);
    let (_, v) = h
        .admin_send(Method::POST, "/tokens/revoke", json!({}))
        .await;
    assert!(v["revoked"].as_u64().unwrap() >= 1);
    assert_eq!(h.get(&token, &path).await.0, 401);
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn org_access_rules() {
    let h = start(SandboxConfig {
        orgs: 3,
        apps: 2,
        ..small()
    })
    .await;
    let apps = h.sandbox.apps();
    assert_eq!(apps[0].organizations, vec![10001, 10003]);
    assert_eq!(apps[1].organizations, vec![10002]);
    assert_eq!(apps[0].client_id, "sandbox-client-1");
    let token = h.token().await;
    let (s, b) = h.get(&token, "/organizations/10002/supporters").await;
    assert_eq!(
        (s, b),
        (403, json!({"error": "This action is unauthorized."}))
    );
    let (s, b) = h.get(&token, "/organizations/99999/transactions").await;
    assert_eq!(
        (s, b),
        (404, json!({"error": "The resource cannot be found"}))
    );
    assert_eq!(h.get(&token, "/organizations/10001/nonsense").await.0, 404);
    for global in [
        "/transactions",
        "/supporters",
        "/campaigns",
        "/recurring-donation-plans",
    ] {
        assert_eq!(h.get(&token, global).await.0, 403, "{global}");
    }
    assert_eq!(
        h.get(&token, "/apps/sandbox-client-2/organizations")
            .await
            .0,
        403
    );
    let (s, b) = h.get(&token, "/apps/sandbox-client-1/organizations").await;
    assert_eq!(s, 200);
    assert_eq!(b["total"], 2);
    let org = &b["data"][0];
    assert_eq!(org["id"], 10001);
    for f in [
        "name",
        "status",
        "currency_code",
        "timezone_identifier",
        "created_at",
        "updated_at",
        "postal_code",
    ] {
        assert!(org[f].is_string(), "organization lacks {f}");
    }
    let (s, b) = h.get(&token, "/organizations/10001").await;
    assert_eq!((s, b["id"].as_i64()), (200, Some(10001)));
    // Same secret must not unlock another client.
    let r = http()
        .post(h.sandbox.auth_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client-2"),
            ("client_secret", &h.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn paging_matches_admin_truth() {
    let h = start(small()).await;
    let token = h.token().await;
    for entity in [
        "supporters",
        "campaigns",
        "transactions",
        "recurring-donation-plans",
    ] {
        let truth = h.admin_get(&format!("/orgs/{}/{entity}", h.org)).await;
        let truth = truth.as_array().unwrap().clone();
        assert!(!truth.is_empty());
        let paged = h
            .page_all(
                &token,
                &format!("/organizations/{}/{entity}?per_page=100", h.org),
            )
            .await;
        assert_eq!(paged, truth, "{entity}: paging differs from the admin dump");
        let small_pages = h
            .page_all(
                &token,
                &format!("/organizations/{}/{entity}?per_page=7", h.org),
            )
            .await;
        assert_eq!(ids(&small_pages), ids(&truth), "{entity}: per_page=7");
    }
    // Envelope details.
    let (_, first) = h
        .get(&token, &format!("/organizations/{}/supporters", h.org))
        .await;
    assert_eq!(
        (first["per_page"].as_u64(), first["total"].as_u64()),
        (Some(20), Some(230))
    );
    assert_eq!(
        (
            first["from"].as_u64(),
            first["to"].as_u64(),
            first["last_page"].as_u64()
        ),
        (Some(1), Some(20), Some(12))
    );
    let path = first["path"].as_str().unwrap();
    assert!(
        path.starts_with("http://127.0.0.1:")
            && path.ends_with(&format!("/2.0/organizations/{}/supporters", h.org))
    );
    assert_eq!(first["prev_page_url"], Value::Null);
    let (_, last) = h
        .get(
            &token,
            &format!("/organizations/{}/supporters?page=12&sort=id:asc", h.org),
        )
        .await;
    assert_eq!(last["next_page_url"], Value::Null);
    assert_eq!(
        (last["from"].as_u64(), last["to"].as_u64()),
        (Some(221), Some(230))
    );
    assert!(last["first_page_url"]
        .as_str()
        .unwrap()
        .contains("sort=id%3Aasc"));
    let (_, past) = h
        .get(
            &token,
            &format!("/organizations/{}/supporters?page=99", h.org),
        )
        .await;
    assert_eq!(
        (past["from"].clone(), past["to"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(past["data"], json!([]));
    let (_, big) = h
        .get(
            &token,
            &format!("/organizations/{}/transactions?per_page=500", h.org),
        )
        .await;
    assert_eq!(big["per_page"], 100);
    assert_eq!(big["data"].as_array().unwrap().len(), 100);
    let (s, b) = h
        .get(
            &token,
            &format!("/organizations/{}/transactions?per_page=lots", h.org),
        )
        .await;
    assert_eq!(s, 400);
    assert!(b["errors"].is_array());
    h.sandbox.shutdown().await;
}

fn sorted_by_updated(truth: &[Value]) -> Vec<Value> {
    let mut v = truth.to_vec();
    v.sort_by_key(|r| {
        (
            r["updated_at"].as_str().unwrap().to_string(),
            r["id"].as_i64().unwrap(),
        )
    });
    v
}

#[tokio::test]
async fn filters_and_sorts() {
    let h = start(small()).await;
    let token = h.token().await;
    let org = h.org;
    let truth = h
        .admin_get(&format!("/orgs/{org}/transactions"))
        .await
        .as_array()
        .unwrap()
        .clone();
    let by_updated = sorted_by_updated(&truth);
    let cut = by_updated[by_updated.len() / 2]["updated_at"]
        .as_str()
        .unwrap()
        .to_string();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();

    // Incremental read: updated_at >= cut, ascending.
    let got = h
        .page_all(
            &token,
            &format!(
                "/organizations/{org}/transactions?filter={}&sort=updated_at:asc&per_page=13",
                enc(&format!("updated_at>={cut}"))
            ),
        )
        .await;
    let want: Vec<Value> = by_updated
        .iter()
        .filter(|r| r["updated_at"].as_str().unwrap() >= cut.as_str())
        .cloned()
        .collect();
    assert_eq!(ids(&got), ids(&want));
    // Same instant written with Z and with milliseconds.
    let z = cut.replace("+0000", "Z");
    let ms = cut.replace("+0000", ".000Z");
    for v in [&z, &ms] {
        let got2 = h
            .page_all(
                &token,
                &format!(
                    "/organizations/{org}/transactions?filter={}&sort=updated_at:asc&per_page=100",
                    enc(&format!("updated_at>={v}"))
                ),
            )
            .await;
        assert_eq!(ids(&got2), ids(&want), "{v}");
    }
    // Strictly greater and descending order.
    let got = h
        .page_all(
            &token,
            &format!(
                "/organizations/{org}/transactions?filter={}&sort=updated_at:desc&per_page=100",
                enc(&format!("updated_at>{cut}"))
            ),
        )
        .await;
    let mut want_gt: Vec<Value> = by_updated
        .iter()
        .filter(|r| r["updated_at"].as_str().unwrap() > cut.as_str())
        .cloned()
        .collect();
    want_gt.sort_by(|a, b| {
        b["updated_at"]
            .as_str()
            .cmp(&a["updated_at"].as_str())
            .then(a["id"].as_i64().cmp(&b["id"].as_i64()))
    });
    assert_eq!(ids(&got), ids(&want_gt));

    // id > X by id.
    let x = truth[100]["id"].as_i64().unwrap();
    let got = h
        .page_all(
            &token,
            &format!("/organizations/{org}/transactions?filter=id%3E{x}&sort=id:asc&per_page=100"),
        )
        .await;
    assert_eq!(ids(&got), ids(&truth[101..]));
    // <> and != are the same; strings compare as strings.
    let not_success: Vec<i64> = ids(&truth
        .iter()
        .filter(|r| r["status"] != "success")
        .cloned()
        .collect::<Vec<_>>());
    for op in ["%3C%3E", "!%3D"] {
        let got = h
            .page_all(
                &token,
                &format!("/organizations/{org}/transactions?filter=status{op}success&per_page=100"),
            )
            .await;
        assert_eq!(ids(&got), not_success);
    }
    // Numbers compare numerically; sort desc keeps ties in id order.
    let got = h
        .page_all(&token, &format!("/organizations/{org}/transactions?filter=total_gross_amount%3E%3D100&sort=total_gross_amount:desc&per_page=100"))
        .await;
    let mut want: Vec<Value> = truth
        .iter()
        .filter(|r| r["total_gross_amount"].as_f64().unwrap() >= 100.0)
        .cloned()
        .collect();
    want.sort_by(|a, b| {
        b["total_gross_amount"]
            .as_f64()
            .partial_cmp(&a["total_gross_amount"].as_f64())
            .unwrap()
            .then(a["id"].as_i64().cmp(&b["id"].as_i64()))
    });
    assert_eq!(ids(&got), ids(&want));
    // supporter_id equality.
    let sid = truth[3]["supporter_id"].as_i64().unwrap();
    let got = h
        .page_all(
            &token,
            &format!("/organizations/{org}/transactions?filter=supporter_id%3D{sid}&per_page=100"),
        )
        .await;
    assert!(!got.is_empty() && got.iter().all(|r| r["supporter_id"] == sid));

    // Errors: double encoding, unknown field, bad operator, bad sort.
    let bad = [
        format!(
            "filter={}",
            enc(&format!("updated_at>{}", cut.replace('+', "%2B")))
        ),
        "filter=favourite_colour%3Dblue".to_string(),
        "filter=id~3".to_string(),
        "sort=wat:asc".to_string(),
        "filter=updated_at%3E2025-01-01T00:00:00+0000".to_string(),
    ];
    for q in bad {
        let (s, b) = h
            .get(&token, &format!("/organizations/{org}/transactions?{q}"))
            .await;
        assert_eq!(s, 400, "{q}");
        assert!(b["errors"][0].is_string(), "{q}: {b}");
    }
    // strict_timestamps quirk: milliseconds become a 400.
    h.admin_send(Method::PUT, "/quirks", json!({"strict_timestamps": true}))
        .await;
    let (s, _) = h
        .get(
            &token,
            &format!(
                "/organizations/{org}/transactions?filter={}",
                enc(&format!("updated_at>={ms}"))
            ),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .get(
            &token,
            &format!(
                "/organizations/{org}/transactions?filter={}",
                enc(&format!("updated_at>={cut}"))
            ),
        )
        .await;
    assert_eq!(s, 200);
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn scripted_faults_in_order() {
    let h = start(small()).await;
    let token = h.token().await;
    let path = format!("/organizations/{}/supporters", h.org);
    let script = json!({"next": [
        {"status": 429, "retry_after": 1}, {"status": 500}, {"status": 503}, {"drop": true},
        {"malformed": true}, {"slow_ms": 300}, {"revoke": true}
    ]});
    let (s, v) = h.admin_send(Method::POST, "/faults/script", script).await;
    assert_eq!((s, v["queued"].as_u64()), (200, Some(7)));
    let url = format!("{}{path}", h.sandbox.api_base_url());

    let r = h.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Too Many Attempts.", "retry_after": 1})
    );
    let r = h.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let r = h.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 503);
    // Drop: headers arrive, the body is cut short.
    let r = h.http.get(&url).bearer_auth(&token).send().await;
    let failed = match r {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "a dropped connection must surface as an error");
    // Malformed: 200 with invalid JSON.
    let r = h.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    // Slow.
    let started = Instant::now();
    assert_eq!(h.get(&token, &path).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Revoke: 401 now and for later calls with the same token.
    assert_eq!(h.get(&token, &path).await.0, 401);
    assert_eq!(h.get(&token, &path).await.0, 401);
    let token = h.token().await;
    assert_eq!(h.get(&token, &path).await.0, 200);

    // Random faults are reproducible from their seed.
    let cfg = json!({"seed": 9, "error_500_rate": 0.3, "retry_after_secs": 2});
    let mut runs = Vec::new();
    for _ in 0..2 {
        h.admin_send(Method::PUT, "/faults", cfg.clone()).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(h.get(&token, &path).await.0);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&500) && runs[0].contains(&200));
    let (s, _) = h
        .admin_send(Method::PUT, "/faults", json!({"error_500_rate": 2.0}))
        .await;
    assert_eq!(s, 400);
    h.admin_send(Method::PUT, "/faults", json!({})).await;
    h.admin_send(
        Method::POST,
        "/faults/script",
        json!({"next": [{"status": 500}]}),
    )
    .await;
    h.admin_send(Method::DELETE, "/faults/script", json!({}))
        .await;
    assert_eq!(h.get(&token, &path).await.0, 200);
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn rate_limit_per_app() {
    let h = start(SandboxConfig {
        rate_limit_per_minute: 5,
        ..small()
    })
    .await;
    let token = h.token().await;
    let path = format!("/organizations/{}/campaigns", h.org);
    for i in 0..5u32 {
        let r = h
            .http
            .get(format!("{}{path}", h.sandbox.api_base_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Classy's throttle headers: the limit and what is left of this window.
        assert_eq!(r.headers()["x-ratelimit-limit"], "5");
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let r = h
        .http
        .get(format!("{}{path}", h.sandbox.api_base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Too Many Attempts.");
    assert_eq!(v["retry_after"], wait);
    h.admin_send(Method::PUT, "/rate-limit", json!({"per_minute": 0}))
        .await;
    assert_eq!(h.get(&token, &path).await.0, 200);
    h.sandbox.shutdown().await;
}

async fn find(h: &Harness, token: &str, path: &str) -> Vec<Value> {
    h.page_all(token, path).await
}

#[tokio::test]
async fn admin_mutations_show_up_in_the_api() {
    let h = start(small()).await;
    let token = h.token().await;
    let org = h.org;
    let before = h
        .admin_get(&format!("/orgs/{org}/supporters"))
        .await
        .as_array()
        .unwrap()
        .clone();
    let max_id = before
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .max()
        .unwrap();

    let (s, created) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/supporters"),
            json!({"first_name": "Zed", "email_address": "zed@example.org"}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert!(id > max_id);
    assert_eq!(created["first_name"], "Zed");
    assert_eq!(created["last_name"], Value::Null);
    assert_eq!(created["created_at"], created["updated_at"]);
    let got = find(
        &h,
        &token,
        &format!("/organizations/{org}/supporters?filter=id%3D{id}"),
    )
    .await;
    assert_eq!(got, vec![created.clone()]);
    let (s, _) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/supporters"),
            json!({"no_such_field": 1}),
        )
        .await;
    assert_eq!(s, 400);

    // PATCH with an explicit updated_at (same second as a cursor) and without.
    let target = before[5]["id"].as_i64().unwrap();
    let stamp = "2026-11-01T10:00:00+0000";
    let (s, patched) = h
        .admin_send(
            Method::PATCH,
            &format!("/orgs/{org}/supporters/{target}"),
            json!({"last_name": "Renamed", "updated_at": stamp}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            patched["last_name"].as_str(),
            patched["updated_at"].as_str()
        ),
        (Some("Renamed"), Some(stamp))
    );
    let got = find(
        &h,
        &token,
        &format!(
            "/organizations/{org}/supporters?filter=updated_at%3E%3D{}&sort=updated_at:asc",
            stamp.replace('+', "%2B").replace(':', "%3A")
        ),
    )
    .await;
    assert!(ids(&got).contains(&target));
    let (_, patched) = h
        .admin_send(
            Method::PATCH,
            &format!("/orgs/{org}/supporters/{target}"),
            json!({"opt_in": true}),
        )
        .await;
    assert_ne!(patched["updated_at"], stamp);
    assert_eq!(patched["opt_in"], true);
    let (s, _) = h
        .admin_send(
            Method::PATCH,
            &format!("/orgs/{org}/supporters/1"),
            json!({"opt_in": true}),
        )
        .await;
    assert_eq!(s, 404);

    // Touch by count and by ids.
    let stamp2 = "2026-11-02T00:00:00+0000";
    let (s, touched) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/transactions/touch"),
            json!({"count": 10, "updated_at": stamp2}),
        )
        .await;
    assert_eq!(s, 200);
    let touched_ids: Vec<i64> = touched["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(touched_ids.len(), 10);
    let got = find(
        &h,
        &token,
        &format!(
            "/organizations/{org}/transactions?filter=updated_at%3D{}&per_page=100",
            stamp2.replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(ids(&got), touched_ids);
    let (_, again) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/transactions/touch"),
            json!({"count": 10, "updated_at": stamp2}),
        )
        .await;
    assert_eq!(
        again["ids"], touched["ids"],
        "count picks are deterministic"
    );
    let (_, by_ids) = h
        .admin_send(
            Method::POST,
            &format!("/orgs/{org}/campaigns/touch"),
            json!({"ids": [200001]}),
        )
        .await;
    assert_eq!(by_ids["ids"], json!([200001]));
    // The dump reflects every change, still in id order.
    let after = h
        .admin_get(&format!("/orgs/{org}/supporters"))
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(after.len(), before.len() + 1);
    assert!(ids(&after).windows(2).all(|w| w[0] < w[1]));
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn counters_count_api_requests_only() {
    let h = start(small()).await;
    let (_, reset) = h
        .admin_send(Method::POST, "/counters/reset", json!({}))
        .await;
    assert_eq!(reset["total"], 0);
    let token = h.token().await;
    let org = h.org;
    h.get(&token, &format!("/organizations/{org}/supporters"))
        .await;
    h.get(&token, &format!("/organizations/{org}/supporters?page=2"))
        .await;
    h.get(
        &token,
        &format!("/organizations/{org}/recurring-donation-plans"),
    )
    .await;
    h.get(&token, "/apps/sandbox-client-1/organizations").await;
    h.get("bad-token", &format!("/organizations/{org}/transactions"))
        .await;
    h.admin_get("/apps").await;
    let c = h.admin_get("/counters").await;
    assert_eq!(c["total"], 6);
    assert_eq!(c["by_endpoint"]["oauth2/auth"], 1);
    assert_eq!(c["by_endpoint"]["supporters"], 2);
    assert_eq!(c["by_endpoint"]["recurring-donation-plans"], 1);
    assert_eq!(c["by_endpoint"]["apps/organizations"], 1);
    assert_eq!(c["by_endpoint"]["transactions"], 1);
    assert_eq!(c["by_endpoint"]["campaigns"], 0);
    assert_eq!(c["by_status"]["200"], 5);
    assert_eq!(c["by_status"]["401"], 1);
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn quirks_break_the_spec_on_purpose() {
    let h = start(SandboxConfig {
        supporters: 400,
        ..small()
    })
    .await;
    let token = h.token().await;
    let org = h.org;
    h.admin_send(
        Method::PUT,
        "/quirks",
        json!({"string_amounts": true, "missing_emails": true}),
    )
    .await;
    let (_, tx) = h
        .get(
            &token,
            &format!("/organizations/{org}/transactions?per_page=5"),
        )
        .await;
    let amount = tx["data"][0]["total_gross_amount"]
        .as_str()
        .expect("amount as string");
    assert!(amount.parse::<f64>().is_ok() && amount.contains('.'));
    let sup = h
        .page_all(
            &token,
            &format!("/organizations/{org}/supporters?per_page=100"),
        )
        .await;
    let missing = sup
        .iter()
        .filter(|s| s.get("email_address").is_none())
        .count();
    assert!(
        missing > 5 && missing < 45,
        "{missing} supporters without email"
    );
    // The admin truth stays spec-conformant.
    let truth = h.admin_get(&format!("/orgs/{org}/supporters")).await;
    assert!(truth
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["email_address"].is_string()));
    h.admin_send(Method::PUT, "/quirks", json!({})).await;
    let (_, tx) = h
        .get(
            &token,
            &format!("/organizations/{org}/transactions?per_page=5"),
        )
        .await;
    assert!(tx["data"][0]["total_gross_amount"].is_number());
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn same_seed_serves_same_data() {
    let a = start(small()).await;
    let b = start(small()).await;
    assert_eq!(a.sandbox.apps(), b.sandbox.apps());
    for entity in ["supporters", "transactions"] {
        let path = format!("/orgs/10002/{entity}");
        assert_eq!(a.admin_get(&path).await, b.admin_get(&path).await);
    }
    a.sandbox.shutdown().await;
    b.sandbox.shutdown().await;
}
