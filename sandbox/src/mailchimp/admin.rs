//! `/admin/mailchimp/...` (no auth, not counted): ground truth, people acting in Mailchimp,
//! lists, keys, counters, faults and the concurrency cap.

use super::faults::{parse_script, FaultRates};
use super::member::Status;
use super::problem::{self, json as json_ok};
use super::store::now_rfc3339;
use super::McShared;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::{json, Value};

pub fn router(state: McShared) -> Router {
    Router::new()
        .route("/admin/mailchimp/lists", post(create_list))
        .route(
            "/admin/mailchimp/lists/{list}/members",
            get(members).delete(empty_list),
        )
        .route(
            "/admin/mailchimp/lists/{list}/members/{hash}",
            patch(patch_member),
        )
        .route("/admin/mailchimp/keys", post(add_key))
        .route("/admin/mailchimp/counters", get(counters))
        .route("/admin/mailchimp/counters/reset", post(reset_counters))
        .route("/admin/mailchimp/faults", get(get_faults).put(put_faults))
        .route(
            "/admin/mailchimp/faults/script",
            post(push_script).delete(clear_script),
        )
        .route(
            "/admin/mailchimp/concurrency",
            get(get_concurrency).put(put_concurrency),
        )
        .with_state(state)
}

fn ok(v: Value) -> Response {
    json_ok(StatusCode::OK, &v)
}

fn parse(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| problem::bad_json(&e.to_string()))
}

fn text_field<'a>(body: &'a Value, field: &str) -> Result<&'a str, Response> {
    match body.get(field).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(problem::invalid(field, &format!("{field} is required"))),
    }
}

/// `POST /admin/mailchimp/lists {"id","name"}`: 201 when created, 200 when it exists.
async fn create_list(State(state): State<McShared>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = match text_field(&body, "id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return problem::invalid("id", "id may hold letters, digits, '-' and '_' only");
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or(id);
    let mut lists = state.lists();
    let created = lists.create(id, name);
    let v = lists.lists[id].to_json();
    json_ok(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &v,
    )
}

/// `GET /admin/mailchimp/lists/{id}/members`, sorted by address.
async fn members(State(state): State<McShared>, Path(list): Path<String>) -> Response {
    let lists = state.lists();
    let Some(l) = lists.lists.get(&list) else {
        return problem::not_found();
    };
    let mut all: Vec<_> = l.members.values().collect();
    all.sort_by(|a, b| a.email_address.cmp(&b.email_address));
    let members: Vec<Value> = all.iter().map(|m| m.to_admin_json()).collect();
    drop(lists);
    ok(json!({ "members": members }))
}

/// `DELETE /admin/mailchimp/lists/{id}/members`: merge fields stay.
async fn empty_list(State(state): State<McShared>, Path(list): Path<String>) -> Response {
    let mut lists = state.lists();
    let Some(l) = lists.lists.get_mut(&list) else {
        return problem::not_found();
    };
    let n = l.members.len();
    l.members.clear();
    ok(json!({"deleted": n}))
}

/// `PATCH /admin/mailchimp/lists/{id}/members/{hash} {"status"}`: the person unsubscribes,
/// bounces... in Mailchimp; no compliance rule applies.
async fn patch_member(
    State(state): State<McShared>,
    Path((list, hash)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let status = match text_field(&body, "status").map(Status::parse) {
        Ok(Some(s)) => s,
        Ok(None) => return problem::invalid("status", "not a member status"),
        Err(r) => return r,
    };
    let mut lists = state.lists();
    let Some(l) = lists.lists.get_mut(&list) else {
        return problem::not_found();
    };
    let Some(m) = l.members.get_mut(&hash.to_lowercase()) else {
        return problem::not_found();
    };
    m.status = status;
    m.last_changed = now_rfc3339();
    let m = m.clone();
    ok(l.member_json(&m))
}

async fn add_key(State(state): State<McShared>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match text_field(&body, "key") {
        Ok(k) => ok(json!({"added": state.keys.add(k)})),
        Err(r) => r,
    }
}

async fn counters(State(state): State<McShared>) -> Response {
    ok(state.counters.snapshot())
}

async fn reset_counters(State(state): State<McShared>) -> Response {
    state.counters.reset();
    ok(state.counters.snapshot())
}

async fn get_faults(State(state): State<McShared>) -> Response {
    ok(serde_json::to_value(state.faults.rates()).expect("json"))
}

async fn put_faults(State(state): State<McShared>, body: Bytes) -> Response {
    let rates: FaultRates = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem::invalid("faults", &e.to_string()),
    };
    if let Err(e) = rates.validate() {
        return problem::invalid("faults", &e);
    }
    state.faults.set_rates(rates);
    ok(serde_json::to_value(state.faults.rates()).expect("json"))
}

/// `POST /admin/mailchimp/faults/script {"responses":[429, 500, "ok"]}` appends to the queue.
async fn push_script(State(state): State<McShared>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(items) = body.get("responses").and_then(Value::as_array) else {
        return problem::invalid("responses", "responses must be an array");
    };
    match parse_script(items) {
        Ok(answers) => ok(json!({"queued": state.faults.push_script(answers)})),
        Err(e) => problem::invalid("responses", &e),
    }
}

async fn clear_script(State(state): State<McShared>) -> Response {
    ok(json!({"cleared": state.faults.clear_script()}))
}

async fn get_concurrency(State(state): State<McShared>) -> Response {
    ok(json!({"limit": state.in_flight.limit()}))
}

async fn put_concurrency(State(state): State<McShared>, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match body.get("limit").and_then(Value::as_u64) {
        Some(n) => {
            state.in_flight.set_limit(n as usize);
            ok(json!({"limit": state.in_flight.limit()}))
        }
        None => problem::invalid("limit", "limit must be a whole number (0 = no cap)"),
    }
}
