//! The API handlers below `/3.0`.

use super::member::{subscriber_hash, MemberInput};
use super::problem::{self, json as json_ok};
use super::store::{List, Mode, TagMembers, UpsertError, Written, MAX_BATCH};
use super::view::ApiMember;
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
        .route("/lists/{list}/segments", get(list_segments))
        .route("/lists/{list}/segments/{segment}", post(update_segment))
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
            .map(|(_, id)| l.member_bytes(&l.members[&id]))
    });
    match result {
        Ok(Ok(bytes)) => problem::json_bytes(StatusCode::OK, bytes),
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
        l.members.get(&hash).map(|m| l.member_bytes(m))
    }) {
        Ok(Some(bytes)) => problem::json_bytes(StatusCode::OK, bytes),
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

#[derive(serde::Serialize)]
struct BatchReply<'a> {
    new_members: Vec<ApiMember<'a>>,
    updated_members: Vec<ApiMember<'a>>,
    errors: Vec<Value>,
    total_created: usize,
    total_updated: usize,
    error_count: usize,
    _links: Vec<Value>,
}

/// `POST /lists/{id}`: up to 500 members; each failure becomes an entry in `errors` and the
/// rest of the batch proceeds. Members carry `status` (a new member's; an existing member's
/// only with `update_existing`, which decides whether existing members' status changes).
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
                Ok((Written::Created, id)) => created.push(id),
                Ok((Written::Updated, id)) => updated.push(id),
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
                Err(UpsertError::NotFound) => errors.push(batch_error(
                    &email,
                    "The member could not be found".into(),
                    "ERROR_GENERIC",
                    "",
                    "",
                )),
            }
        }
        // A member named twice in one batch is reported once per write, as written last.
        let view = |ids: &[String]| -> Vec<ApiMember<'_>> {
            ids.iter().map(|id| l.api_member(&l.members[id])).collect()
        };
        let reply = BatchReply {
            new_members: view(&created),
            updated_members: view(&updated),
            total_created: created.len(),
            total_updated: updated.len(),
            error_count: errors.len(),
            errors,
            _links: Vec::new(),
        };
        serde_json::to_vec(&reply).expect("batch json")
    });
    state.counters.compliance(compliance);
    match result {
        Ok(bytes) => problem::json_bytes(StatusCode::OK, bytes),
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

/// `count` (default 10, at most 1000) and `offset` (default 0), as Mailchimp pages collections.
fn paging(q: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let num = |k: &str, default: usize| -> Result<usize, Response> {
        match q.get(k) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| problem::invalid(k, &format!("{k} must be a whole number"))),
        }
    };
    Ok((num("count", 10)?.min(1000), num("offset", 0)?))
}

/// `GET /lists/{id}/merge-fields?count=&offset=`: Mailchimp pages these, 10 by default.
async fn list_merge_fields(
    State(state): State<McShared>,
    Path(list): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (count, offset) = match paging(&q) {
        Ok(p) => p,
        Err(r) => return r,
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

/// `GET /lists/{id}/segments?type=&count=&offset=`: the list's tags, which are its only
/// (static) segments here, in id order with member counts computed now.
async fn list_segments(
    State(state): State<McShared>,
    Path(list): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (count, offset) = match paging(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // No saved (condition) or fuzzy segments exist in the sandbox.
    let only_static = match q.get("type").map(String::as_str) {
        None | Some("static") => true,
        Some("saved" | "fuzzy") => false,
        Some(_) => return problem::invalid("type", "type must be one of saved, static, fuzzy"),
    };
    let result = with_list(&state, &list, |l| {
        let all = if only_static {
            l.tags_with_counts()
        } else {
            Vec::new()
        };
        let segments: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(count)
            .map(|(t, n)| t.segment_json(&l.id, *n))
            .collect();
        json!({"segments": segments, "list_id": l.id, "total_items": all.len(), "_links": []})
    });
    match result {
        Ok(v) => json_ok(StatusCode::OK, &v),
        Err(r) => r,
    }
}

/// An optional array of at most 500 address strings.
fn email_list(body: &Value, field: &str) -> Result<Vec<String>, Response> {
    let items = match body.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(problem::invalid(
                field,
                &format!("{field} must be an array of email addresses"),
            ))
        }
    };
    if items.len() > MAX_BATCH {
        return Err(problem::invalid(
            field,
            &format!(
                "{field} may hold at most {MAX_BATCH} members; this one has {}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| {
            problem::invalid(
                field,
                &format!("{field} must be an array of email addresses"),
            )
        })
}

#[derive(serde::Serialize)]
struct SegmentReply<'a> {
    members_added: Vec<ApiMember<'a>>,
    members_removed: Vec<ApiMember<'a>>,
    errors: Vec<Value>,
    total_added: usize,
    total_removed: usize,
    error_count: usize,
    _links: Vec<Value>,
}

/// `POST /lists/{id}/segments/{segment_id}` `{"members_to_add":[..], "members_to_remove":[..]}`:
/// gives or takes one tag for many members in one call. Additions run first. The spec says
/// addresses not on the list are ignored; Mailchimp reports them in `errors`, so do we.
async fn update_segment(
    State(state): State<McShared>,
    Path((list, segment)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body = match object_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (to_add, to_remove) = match (
        email_list(&body, "members_to_add"),
        email_list(&body, "members_to_remove"),
    ) {
        (Ok(a), Ok(r)) => (a, r),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let result = with_list(&state, &list, |l| {
        let name = segment
            .parse::<u64>()
            .ok()
            .and_then(|id| l.tag_by_id(id))
            .map(|t| t.name.clone())?;
        let added = l.tag_members(&name, &to_add, true);
        let removed = l.tag_members(&name, &to_remove, false);
        Some(segment_reply(l, added, removed))
    });
    match result {
        Ok(Some(bytes)) => problem::json_bytes(StatusCode::OK, bytes),
        Ok(None) => problem::not_found(),
        Err(r) => r,
    }
}

/// The answer, with every address not on the list in one `errors` entry.
fn segment_reply(l: &List, added: TagMembers, removed: TagMembers) -> Vec<u8> {
    let view = |ids: &[String]| -> Vec<ApiMember<'_>> {
        ids.iter().map(|id| l.api_member(&l.members[id])).collect()
    };
    let missing: Vec<String> = added
        .not_found
        .into_iter()
        .chain(removed.not_found)
        .collect();
    let error_count = missing.len();
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![json!({"email_addresses": missing,
                    "error": "Email addresses are not members of this list"})]
    };
    let reply = SegmentReply {
        members_added: view(&added.changed),
        members_removed: view(&removed.changed),
        errors,
        total_added: added.changed.len(),
        total_removed: removed.changed.len(),
        error_count,
        _links: Vec::new(),
    };
    serde_json::to_vec(&reply).expect("segment json")
}
