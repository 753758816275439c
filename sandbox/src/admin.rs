//! Unauthenticated admin API for tests, `make run` and benchmarks: ground truth, mutations,
//! counters, faults, quirks and token control.

use crate::api::{bad_request, json_bytes, json_response, not_found, Shared};
use crate::config::{FaultConfig, Quirks};
use crate::data::record::SerOpts;
use crate::data::store::{Entity, EntityKind, OrgStore};
use crate::data::time;
use crate::faults::ScriptStep;
use crate::with_entity;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/admin/apps", get(apps))
        .route("/admin/apps/{client_id}/secret", post(regenerate_secret))
        .route("/admin/orgs", get(orgs))
        .route(
            "/admin/orgs/{org}/webhook",
            get(get_webhook).put(put_webhook).delete(delete_webhook),
        )
        .route("/admin/webhooks", get(webhooks))
        .route("/admin/webhooks/reset", post(reset_webhooks))
        .route("/admin/orgs/{org}/{entity}", get(dump).post(create))
        .route("/admin/orgs/{org}/{entity}/touch", post(touch))
        .route("/admin/orgs/{org}/{entity}/{id}", get(get_one).patch(patch))
        .route(
            "/admin/orgs/{org}/{entity}/{id}/corrupt",
            put(put_corrupt).delete(delete_corrupt),
        )
        .route("/admin/counters", get(counters))
        .route("/admin/counters/reset", post(reset_counters))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route(
            "/admin/faults/script",
            post(push_script).delete(clear_script),
        )
        .route("/admin/tokens/revoke", post(revoke_tokens))
        .route("/admin/token-lifetime", get(get_lifetime).put(put_lifetime))
        .route("/admin/rate-limit", get(get_rate_limit).put(put_rate_limit))
        .route("/admin/latency", get(get_latency).put(put_latency))
        .route("/admin/quirks", get(get_quirks).put(put_quirks))
        .with_state(state)
}

fn ok(v: Value) -> Response {
    json_response(StatusCode::OK, &v)
}

fn lookup(
    state: &Shared,
    org: &str,
    entity: &str,
) -> Result<(Arc<OrgStore>, EntityKind), Response> {
    let org = org
        .parse::<i64>()
        .ok()
        .and_then(|id| state.store.orgs.get(&id))
        .ok_or_else(not_found)?;
    let kind = EntityKind::from_path(entity).ok_or_else(not_found)?;
    Ok((org.clone(), kind))
}

/// `GET /admin/apps`
async fn apps(State(state): State<Shared>) -> Response {
    let apps: Vec<_> = state
        .store
        .apps
        .iter()
        .map(|a| crate::data::store::AppInfo {
            client_secret: state.client_secret(a),
            ..a.clone()
        })
        .collect();
    ok(serde_json::to_value(&apps).expect("json"))
}

/// `POST /admin/apps/{client_id}/secret`: regenerates the application's client secret, as
/// the developer portal does; the old secret and every token issued with it stop working.
async fn regenerate_secret(State(state): State<Shared>, Path(client_id): Path<String>) -> Response {
    if !state.store.apps.iter().any(|a| a.client_id == client_id) {
        return not_found();
    }
    let mut bytes = [0u8; 24];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    state
        .regenerated_secrets
        .write()
        .expect("secrets lock")
        .insert(client_id.clone(), secret.clone());
    let revoked = state.tokens.revoke_client(&client_id);
    ok(json!({"client_id": client_id, "client_secret": secret, "tokens_revoked": revoked}))
}

/// `GET /admin/orgs`: ids, owners and record counts.
async fn orgs(State(state): State<Shared>) -> Response {
    let list: Vec<Value> = state
        .store
        .orgs
        .values()
        .map(|o| {
            json!({
                "id": o.org.id, "name": &*o.org.name, "client_id": o.client_id,
                "counts": {
                    "supporters": o.supporters.read().expect("lock").records.len(),
                    "campaigns": o.campaigns.read().expect("lock").records.len(),
                    "transactions": o.transactions.read().expect("lock").records.len(),
                    "recurring-donation-plans": o.plans.read().expect("lock").records.len(),
                }
            })
        })
        .collect();
    ok(Value::Array(list))
}

const DUMP_CHUNK: usize = 2000;

/// Streams all records as a JSON array, a chunk at a time so large tables never sit in
/// memory twice and writers are not blocked for long.
fn dump_body<E: Entity>(org: Arc<OrgStore>) -> Body {
    let stream = futures::stream::unfold(Some(0usize), move |state| {
        let org = org.clone();
        async move {
            let pos = state?;
            let table = E::table(&org).read().expect("table lock");
            let n = table.records.len();
            let end = (pos + DUMP_CHUNK).min(n);
            let mut buf = Vec::with_capacity((end - pos) * 900 + 2);
            if pos == 0 {
                buf.push(b'[');
            }
            for i in pos..end {
                if i > 0 {
                    buf.push(b',');
                }
                table.records[i].write_json(&mut buf, &SerOpts::default());
            }
            let next = if end >= n {
                buf.push(b']');
                None
            } else {
                Some(end)
            };
            Some((Ok::<_, Infallible>(Bytes::from(buf)), next))
        }
    });
    Body::from_stream(stream)
}

/// `GET /admin/orgs/{org}/{entity}`: every current record in id order, as served by default.
async fn dump(
    State(state): State<Shared>,
    Path((org, entity)): Path<(String, String)>,
) -> Response {
    let (org, kind) = match lookup(&state, &org, &entity) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = with_entity!(kind, E => dump_body::<E>(org));
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn get_entity<E: Entity>(org: &OrgStore, id: i64) -> Response {
    let table = E::table(org).read().expect("table lock");
    match table.position_of(id) {
        Some(p) => {
            let mut out = Vec::with_capacity(1024);
            table.records[p].write_json(&mut out, &SerOpts::default());
            json_bytes(StatusCode::OK, out)
        }
        None => not_found(),
    }
}

/// `GET /admin/orgs/{org}/{entity}/{id}`
async fn get_one(
    State(state): State<Shared>,
    Path((org, entity, id)): Path<(String, String, i64)>,
) -> Response {
    match lookup(&state, &org, &entity) {
        Ok((org, kind)) => with_entity!(kind, E => get_entity::<E>(&org, id)),
        Err(r) => r,
    }
}

fn apply_fields<E: Entity>(
    rec: &mut E,
    obj: &serde_json::Map<String, Value>,
) -> Result<(), Response> {
    for (k, v) in obj {
        if k == "id" || k == "organization_id" {
            continue;
        }
        rec.set_json(k, v).map_err(bad_request)?;
    }
    Ok(())
}

fn create_entity<E: Entity>(state: &Shared, org: &OrgStore, body: &Value) -> Response {
    let Some(obj) = body.as_object() else {
        return bad_request("the body must be a JSON object of record fields");
    };
    let now = time::now();
    let mut table = E::table(org).write().expect("table lock");
    // The id is drawn under the table lock so records are pushed in ascending id order.
    let id = state.store.next_id::<E>();
    let mut rec = E::blank(org.org.id, id, now);
    if let Err(r) = apply_fields(&mut rec, obj) {
        return r;
    }
    rec.set_id(id);
    table.insert(rec.clone());
    drop(table);
    state.webhooks.emit(org.org.id, E::PATH, true, &[id]);
    json_response(StatusCode::CREATED, &rec.to_value())
}

/// `POST /admin/orgs/{org}/{entity}` body: partial record. Answers 201 with the record.
async fn create(
    State(state): State<Shared>,
    Path((org, entity)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    match lookup(&state, &org, &entity) {
        Ok((org, kind)) => with_entity!(kind, E => create_entity::<E>(&state, &org, &body)),
        Err(r) => r,
    }
}

fn patch_entity<E: Entity>(state: &Shared, org: &OrgStore, id: i64, body: &Value) -> Response {
    let Some(obj) = body.as_object() else {
        return bad_request("the body must be a JSON object of record fields");
    };
    if obj.get("id").is_some_and(|v| v.as_i64() != Some(id)) {
        return bad_request("the id cannot change");
    }
    let mut table = E::table(org).write().expect("table lock");
    let Some(pos) = table.position_of(id) else {
        return not_found();
    };
    let mut rec = table.records[pos].clone();
    if let Err(r) = apply_fields(&mut rec, obj) {
        return r;
    }
    if !obj.contains_key("updated_at") {
        rec.set_updated_at(time::now());
    }
    table.replace(pos, rec.clone());
    drop(table);
    state.webhooks.emit(org.org.id, E::PATH, false, &[id]);
    ok(rec.to_value())
}

fn corrupt_entity<E: Entity>(org: &OrgStore, id: i64, fields: Option<&Value>) -> Response {
    let mut table = E::table(org).write().expect("table lock");
    if table.position_of(id).is_none() {
        return not_found();
    }
    match fields {
        Some(v) => {
            let Some(obj) = v.as_object() else {
                return bad_request("the body must be a JSON object of fields to serve verbatim");
            };
            if obj.contains_key("id") {
                return bad_request("the id cannot be corrupted (records are found by it)");
            }
            table.corrupt.insert(id, obj.clone());
        }
        None => {
            table.corrupt.remove(&id);
        }
    }
    ok(json!({"id": id, "corrupt": fields.is_some()}))
}

/// `PUT /admin/orgs/{org}/{entity}/{id}/corrupt` body: fields served verbatim in place of the
/// record's own (e.g. an object where a name belongs), until `DELETE` of the same path. A
/// fault for tests: the record's truth (`GET /admin/...`) is unchanged.
async fn put_corrupt(
    State(state): State<Shared>,
    Path((org, entity, id)): Path<(String, String, i64)>,
    Json(body): Json<Value>,
) -> Response {
    match lookup(&state, &org, &entity) {
        Ok((org, kind)) => with_entity!(kind, E => corrupt_entity::<E>(&org, id, Some(&body))),
        Err(r) => r,
    }
}

/// `DELETE /admin/orgs/{org}/{entity}/{id}/corrupt`: serves the record as it is again.
async fn delete_corrupt(
    State(state): State<Shared>,
    Path((org, entity, id)): Path<(String, String, i64)>,
) -> Response {
    match lookup(&state, &org, &entity) {
        Ok((org, kind)) => with_entity!(kind, E => corrupt_entity::<E>(&org, id, None)),
        Err(r) => r,
    }
}

/// `PATCH /admin/orgs/{org}/{entity}/{id}` body: fields to merge; `updated_at` = now unless given.
async fn patch(
    State(state): State<Shared>,
    Path((org, entity, id)): Path<(String, String, i64)>,
    Json(body): Json<Value>,
) -> Response {
    match lookup(&state, &org, &entity) {
        Ok((org, kind)) => with_entity!(kind, E => patch_entity::<E>(&state, &org, id, &body)),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TouchBody {
    ids: Option<Vec<i64>>,
    count: Option<usize>,
    updated_at: Option<String>,
}

fn touch_entity<E: Entity>(state: &Shared, org: &OrgStore, body: &TouchBody) -> Response {
    let t = match &body.updated_at {
        Some(s) => match time::parse_ts(s, true) {
            Ok(t) => t,
            Err(_) => return bad_request(format!("updated_at {s:?} is not a timestamp")),
        },
        None => time::now(),
    };
    let mut table = E::table(org).write().expect("table lock");
    let positions: Vec<usize> = match (&body.ids, body.count) {
        (Some(ids), None) => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                match table.position_of(*id) {
                    Some(p) => out.push(p),
                    None => return bad_request(format!("no {} with id {id}", E::PATH)),
                }
            }
            out
        }
        (None, Some(count)) => {
            // Deterministic spread: every k-th record in id order.
            let n = table.records.len();
            let count = count.min(n);
            let step = n.checked_div(count).unwrap_or(1);
            (0..count).map(|i| i * step).collect()
        }
        _ => return bad_request("give exactly one of \"ids\" or \"count\""),
    };
    table.touch(&positions, t);
    let ids: Vec<i64> = positions.iter().map(|&p| table.records[p].id()).collect();
    drop(table);
    state.webhooks.emit(org.org.id, E::PATH, false, &ids);
    ok(json!({"ids": ids, "updated_at": time::format_ts(t)}))
}

/// `POST /admin/orgs/{org}/{entity}/touch` body `{"ids":[..]}` or `{"count":N}`, optional
/// `"updated_at"`.
async fn touch(
    State(state): State<Shared>,
    Path((org, entity)): Path<(String, String)>,
    Json(body): Json<TouchBody>,
) -> Response {
    match lookup(&state, &org, &entity) {
        Ok((org, kind)) => with_entity!(kind, E => touch_entity::<E>(&state, &org, &body)),
        Err(r) => r,
    }
}

async fn counters(State(state): State<Shared>) -> Response {
    ok(state.counters.snapshot())
}

async fn reset_counters(State(state): State<Shared>) -> Response {
    state.counters.reset();
    ok(state.counters.snapshot())
}

async fn get_faults(State(state): State<Shared>) -> Response {
    ok(serde_json::to_value(state.faults.config()).expect("json"))
}

async fn put_faults(State(state): State<Shared>, Json(cfg): Json<FaultConfig>) -> Response {
    let rates = [
        cfg.rate_limit_rate,
        cfg.error_500_rate,
        cfg.error_503_rate,
        cfg.slow_rate,
        cfg.drop_rate,
        cfg.malformed_rate,
        cfg.revoke_token_rate,
    ];
    if rates.iter().any(|r| !(0.0..=1.0).contains(r)) || rates.iter().sum::<f64>() > 1.0 + 1e-9 {
        return bad_request("rates must lie in 0..1 and sum to at most 1");
    }
    state.faults.set_config(cfg);
    ok(serde_json::to_value(state.faults.config()).expect("json"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    next: Vec<ScriptStep>,
}

/// `POST /admin/faults/script` appends outcomes for the next API requests.
async fn push_script(State(state): State<Shared>, Json(script): Json<Script>) -> Response {
    let retry = state.faults.default_retry_after();
    let outcomes: Result<Vec<_>, String> = script.next.iter().map(|s| s.outcome(retry)).collect();
    match outcomes {
        Ok(o) => ok(json!({"queued": state.faults.push_script(o)})),
        Err(e) => bad_request(e),
    }
}

async fn clear_script(State(state): State<Shared>) -> Response {
    state.faults.clear_script();
    ok(json!({"queued": state.faults.script_len()}))
}

async fn revoke_tokens(State(state): State<Shared>) -> Response {
    ok(json!({"revoked": state.tokens.revoke_all()}))
}

#[derive(Deserialize)]
struct Secs {
    secs: u64,
}

async fn get_lifetime(State(state): State<Shared>) -> Response {
    ok(json!({"secs": state.tokens.lifetime()}))
}

async fn put_lifetime(State(state): State<Shared>, Json(b): Json<Secs>) -> Response {
    state.tokens.set_lifetime(b.secs);
    ok(json!({"secs": state.tokens.lifetime()}))
}

#[derive(Deserialize)]
struct PerMinute {
    per_minute: u32,
    /// The window in milliseconds (default a minute), for tests that scale time.
    #[serde(default)]
    window_ms: Option<u64>,
}

fn rate_limit_view(state: &Shared) -> Value {
    json!({
        "per_minute": state.limiter.per_minute(),
        "window_ms": state.limiter.window().as_millis() as u64,
    })
}

async fn get_rate_limit(State(state): State<Shared>) -> Response {
    ok(rate_limit_view(&state))
}

/// `PUT /admin/rate-limit {"per_minute": N, "window_ms"?: M}`: every application's window
/// starts afresh (`window_ms`, default a minute, scales time for tests).
async fn put_rate_limit(State(state): State<Shared>, Json(b): Json<PerMinute>) -> Response {
    state.limiter.set_window_ms(b.window_ms.unwrap_or(60_000));
    state.limiter.set_per_minute(b.per_minute);
    ok(rate_limit_view(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    ms: u64,
}

async fn get_latency(State(state): State<Shared>) -> Response {
    ok(json!({"ms": state.latency_ms.load(std::sync::atomic::Ordering::Relaxed)}))
}

/// `PUT /admin/latency {"ms": N}`: added to every later Classy API request (not admin ones).
async fn put_latency(State(state): State<Shared>, Json(b): Json<Latency>) -> Response {
    state
        .latency_ms
        .store(b.ms, std::sync::atomic::Ordering::Relaxed);
    ok(json!({"ms": b.ms}))
}

async fn get_quirks(State(state): State<Shared>) -> Response {
    ok(serde_json::to_value(state.quirks()).expect("json"))
}

async fn put_quirks(State(state): State<Shared>, Json(q): Json<Quirks>) -> Response {
    *state.quirks.write().expect("quirks lock") = q;
    ok(serde_json::to_value(state.quirks()).expect("json"))
}

fn org_id(state: &Shared, org: &str) -> Result<i64, Response> {
    org.parse::<i64>()
        .ok()
        .filter(|id| state.store.orgs.contains_key(id))
        .ok_or_else(not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    secret: String,
    retry_delays_ms: Option<Vec<u64>>,
}

fn webhook_view(org: i64, e: Option<&crate::webhooks::Endpoint>) -> Value {
    match e {
        Some(e) => {
            json!({"organization_id": org, "url": e.url, "retry_delays_ms": e.retry_delays_ms})
        }
        None => json!({"organization_id": org, "url": null}),
    }
}

/// `PUT /admin/orgs/{org}/webhook` body `{"url", "secret": "whsec_..", "retry_delays_ms"?}`:
/// every later change of the organization's supporters, transactions and plans is sent there,
/// Svix-signed. The answer never carries the secret.
async fn put_webhook(
    State(state): State<Shared>,
    Path(org): Path<String>,
    Json(body): Json<WebhookBody>,
) -> Response {
    let org = match org_id(&state, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    match crate::webhooks::Endpoint::new(&body.url, &body.secret, body.retry_delays_ms) {
        Ok(e) => {
            let view = webhook_view(org, Some(&e));
            state.webhooks.set_endpoint(org, e);
            ok(view)
        }
        Err(e) => bad_request(e),
    }
}

/// `GET /admin/orgs/{org}/webhook`: the endpoint URL (null when none), never the secret.
async fn get_webhook(State(state): State<Shared>, Path(org): Path<String>) -> Response {
    match org_id(&state, &org) {
        Ok(o) => ok(webhook_view(o, state.webhooks.endpoint(o).as_ref())),
        Err(r) => r,
    }
}

/// `DELETE /admin/orgs/{org}/webhook`: no more events for the organization.
async fn delete_webhook(State(state): State<Shared>, Path(org): Path<String>) -> Response {
    match org_id(&state, &org) {
        Ok(o) => ok(json!({"organization_id": o, "removed": state.webhooks.remove_endpoint(o)})),
        Err(r) => r,
    }
}

/// `GET /admin/webhooks`: endpoints and delivery counters.
async fn webhooks(State(state): State<Shared>) -> Response {
    ok(json!({
        "endpoints": state.webhooks.endpoints_json(),
        "counters": state.webhooks.snapshot(),
    }))
}

/// `POST /admin/webhooks/reset`: zeroes the delivery counters.
async fn reset_webhooks(State(state): State<Shared>) -> Response {
    state.webhooks.reset();
    ok(json!({"counters": state.webhooks.snapshot()}))
}
