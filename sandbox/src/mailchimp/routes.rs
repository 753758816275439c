//! The API handlers below `/3.0`.

use super::member::{subscriber_hash, MemberInput};
use super::problem::{self, json as json_ok};
use super::store::{List, Mode, UpsertError, Written, MAX_BATCH};
use super::McShared;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn router() -> Router<McShared> {
    Router::new()
        .route("/ping", get(ping))
        .route("/lists/{list}", get(get_list).post(batch))
        .route(
            "/lists/{list}/members/{hash}",
            put(put_member).get(get_member).patch(patch_member),
        )
        .route("/lists/{list}/members/{hash}/tags", post(post_tags))
        .route(
            "/lists/{list}/merge-fields",
            get(list_merge_fields).post(add_merge_field),
        )
}

/// Parses a JSON object body, or answers Mailchimp's parse error.
fn object_body(body: &Bytes) -> Result<Value, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| problem::bad_json(&e.to_string()))?;
    if !v.is_object() {
        return Err(problem::bad_json("the body must be a JSON object"));
    }
    Ok(v)
}

/// The path's subscriber hash; an email address there is hashed, as Mailchimp allows.
fn hash_param(raw: &str) -> String {
    if raw.contains('@') {
        subscriber_hash(raw)
    } else {
        raw.to_lowercase()
    }
}

/// Runs `f` on the list, or answers 404.
fn with_list<T>(state: &McShared, id: &str, f: impl FnOnce(&mut List) -> T) -> Result<T, Response> {
    let mut lists = state.lists();
    match lists.lists.get_mut(id) {
        Some(l) => Ok(f(l)),
        None => Err(problem::not_found()),
    }
}

fn upsert_error(state: &McShared, e: UpsertError) -> Response {
    match e {
        UpsertError::Invalid(f) => problem::invalid(&f.field, &f.message),
        UpsertError::Compliance { email } => {
            state.counters.compliance(1);
            problem::compliance(&email)
        }
        UpsertError::Exists { email } => problem::problem(
            400,
            "Member Exists",
            &format!("{email} is already a list member. Use PUT to insert or update list members."),
            None,
        ),
        UpsertError::NotFound => problem::not_found(),
    }
}

async fn ping() -> Response {
    json_ok(
        StatusCode::OK,
        &json!({"health_status": "Everything's Chimpy!"}),
    )
}

async fn get_list(State(state): State<McShared>, Path(list): Path<String>) -> Response {
    match with_list(&state, &list, |l| l.to_json()) {
        Ok(v) => json_ok(StatusCode::OK, &v),
        Err(r) => r,
    }
}

/// `PUT` and `PATCH` share everything but the mode.
fn write_member(state: &McShared, list: &str, hash: &str, body: &Bytes, mode: Mode) -> Response {
    let body = match object_body(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let input = match MemberInput::from_json(&body, false) {
        Ok(i) => i,
        Err(f) => return problem::invalid(&f.field, &f.message),
    };
    let hash = hash_param(hash);
    let result = with_list(state, list, |l| {
        l.upsert(Some(&hash), &input, mode)
            .map(|(_, id)| l.member_json(&l.members[&id]))
    });
    match result {
        Ok(Ok(v)) => json_ok(StatusCode::OK, &v),
        Ok(Err(e)) => upsert_error(state, e),
        Err(r) => r,
    }
}

async fn put_member(
    State(state): State<McShared>,
    Path((list, hash)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    write_member(&state, &list, &hash, &body, Mode::Put)
}

async fn patch_member(
    State(state): State<McShared>,
    Path((list, hash)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    write_member(&state, &list, &hash, &body, Mode::Patch)
}

async fn get_member(
    State(state): State<McShared>,
    Path((list, hash)): Path<(String, String)>,
) -> Response {
    let hash = hash_param(&hash);
    match with_list(&state, &list, |l| {
        l.members.get(&hash).map(|m| l.member_json(m))
    }) {
        Ok(Some(v)) => json_ok(StatusCode::OK, &v),
        Ok(None) => problem::not_found(),
        Err(r) => r,
    }
}

fn bool_field(body: &Value, field: &str) -> Result<bool, Response> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(problem::invalid(
            field,
            &format!("{field} must be a boolean"),
        )),
    }
}

fn batch_error(email: &str, error: String, code: &str, field: &str, field_message: &str) -> Value {
    json!({"email_address": email, "error": error, "error_code": code,
           "field": field, "field_message": field_message})
}

/// `POST /lists/{id}`: up to 500 members; each failure becomes an entry in `errors` and the
/// rest of the batch proceeds.
async fn batch(State(state): State<McShared>, Path(list): Path<String>, body: Bytes) -> Response {
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(members) = body.get("members").and_then(Value::as_array) else {
        return problem::invalid("members", "members is required and must be an array");
    };
    if members.len() > MAX_BATCH {
        return problem::invalid(
            "members",
            &format!(
                "You may add or update at most {MAX_BATCH} members per request; this one has {}",
                members.len()
            ),
        );
    }
    let (update_existing, sync_tags) = match (
        bool_field(&body, "update_existing"),
        bool_field(&body, "sync_tags"),
    ) {
        (Ok(u), Ok(s)) => (u, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mode = Mode::Batch {
        update_existing,
        sync_tags,
    };
    let mut compliance = 0;
    let result = with_list(&state, &list, |l| {
        let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for m in members {
            let email = m
                .get("email_address")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let outcome = MemberInput::from_json(m, true)
                .map_err(UpsertError::Invalid)
                .and_then(|input| l.upsert(None, &input, mode));
            match outcome {
                Ok((Written::Created, id)) => created.push(l.member_json(&l.members[&id])),
                Ok((Written::Updated, id)) => updated.push(l.member_json(&l.members[&id])),
                Err(UpsertError::Invalid(f)) => errors.push(batch_error(
                    &email,
                    f.message.clone(),
                    "ERROR_GENERIC",
                    &f.field,
                    &f.message,
                )),
                Err(UpsertError::Compliance { email }) => {
                    compliance += 1;
                    errors.push(batch_error(
                        &email,
                        format!("{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."),
                        "ERROR_GENERIC",
                        "",
                        "",
                    ))
                }
                Err(UpsertError::Exists { email }) => errors.push(batch_error(
                    &email,
                    format!("{email} is already a list member. Use PUT to insert or update list members."),
                    "ERROR_CONTACT_EXISTS",
                    "",
                    "",
                )),
                Err(UpsertError::NotFound) => errors.push(batch_error(
                    &email,
                    "The member could not be found".into(),
                    "ERROR_GENERIC",
                    "",
                    "",
                )),
            }
        }
        json!({
            "total_created": created.len(),
            "total_updated": updated.len(),
            "error_count": errors.len(),
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "_links": [],
        })
    });
    state.counters.compliance(compliance);
    match result {
        Ok(v) => json_ok(StatusCode::OK, &v),
        Err(r) => r,
    }
}

/// `POST /lists/{id}/members/{hash}/tags`: `{"tags":[{"name","status":"active|inactive"}]}`.
async fn post_tags(
    State(state): State<McShared>,
    Path((list, hash)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(items) = body.get("tags").and_then(Value::as_array) else {
        return problem::invalid("tags", "tags is required and must be an array");
    };
    let mut changes = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        let name = t.get("name").and_then(Value::as_str).map(str::trim);
        let active = match t.get("status").and_then(Value::as_str) {
            Some("active") => true,
            Some("inactive") => false,
            _ => {
                return problem::invalid(
                    &format!("tags[{i}].status"),
                    "status must be \"active\" or \"inactive\"",
                )
            }
        };
        match name {
            Some(n) if !n.is_empty() => changes.push((n.to_string(), active)),
            _ => return problem::invalid(&format!("tags[{i}].name"), "name is required"),
        }
    }
    let hash = hash_param(&hash);
    match with_list(&state, &list, |l| l.set_tags(&hash, &changes)) {
        Ok(Ok(())) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Ok(Err(e)) => upsert_error(&state, e),
        Err(r) => r,
    }
}

/// `GET /lists/{id}/merge-fields?count=&offset=`: Mailchimp pages these, 10 by default.
async fn list_merge_fields(
    State(state): State<McShared>,
    Path(list): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let num = |k: &str, default: usize| -> Result<usize, Response> {
        match q.get(k) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| problem::invalid(k, &format!("{k} must be a whole number"))),
        }
    };
    let (count, offset) = match (num("count", 10), num("offset", 0)) {
        (Ok(c), Ok(o)) => (c.min(1000), o),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let result = with_list(&state, &list, |l| {
        let fields: Vec<Value> = l
            .merge_fields
            .iter()
            .skip(offset)
            .take(count)
            .map(|m| m.to_json(&l.id))
            .collect();
        json!({"merge_fields": fields, "list_id": l.id,
               "total_items": l.merge_fields.len(), "_links": []})
    });
    match result {
        Ok(v) => json_ok(StatusCode::OK, &v),
        Err(r) => r,
    }
}

async fn add_merge_field(
    State(state): State<McShared>,
    Path(list): Path<String>,
    body: Bytes,
) -> Response {
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let Some(name) = text("name") else {
        return problem::invalid("name", "name is required");
    };
    let Some(kind) = text("type") else {
        return problem::invalid("type", "type is required");
    };
    let required = body
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let default_value = text("default_value").unwrap_or("");
    let result = with_list(&state, &list, |l| {
        let id = l.id.clone();
        l.add_merge_field(text("tag"), name, kind, required, default_value)
            .map(|m| m.to_json(&id))
    });
    match result {
        Ok(Ok(v)) => json_ok(StatusCode::OK, &v),
        Ok(Err(f)) => problem::invalid(&f.field, &f.message),
        Err(r) => r,
    }
}
