//! List endpoints: organization-scoped entity lists and an app's organizations.

use super::auth::Caller;
use super::envelope::{write_envelope, Page, PageUrls};
use super::filter::{parse_filter, parse_query, parse_sort, ListQuery};
use super::{bad_request, forbidden, json_bytes, not_found, Shared};
use crate::data::record::{Record, SerOpts};
use crate::data::store::{Entity, EntityKind, OrgStore, Table};
use crate::with_entity;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use std::sync::Arc;

/// Absolute origin for page URLs, from the request's Host.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// The organization if it exists and belongs to the caller's app (404 / 403 otherwise).
fn authorize_org(state: &Shared, caller: &Caller, org: &str) -> Result<Arc<OrgStore>, Response> {
    let id: i64 = org.parse().map_err(|_| not_found())?;
    let org = state.store.orgs.get(&id).ok_or_else(not_found)?;
    if org.client_id != caller.client_id {
        return Err(forbidden());
    }
    Ok(org.clone())
}

/// Serves one page of `table` for the query.
fn render<R: Record>(
    table: &Table<R>,
    q: &ListQuery,
    strict: bool,
    opts: &SerOpts,
    urls: &PageUrls,
) -> Response {
    let filter = match q
        .filter
        .as_deref()
        .map(|f| parse_filter::<R>(f, strict))
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let sort = match q.sort.as_deref().map(parse_sort::<R>).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return bad_request(e),
    };
    let key = format!(
        "{}\u{1}{}:{}",
        q.filter.as_deref().unwrap_or(""),
        sort.field,
        sort.desc
    );
    let sel = table.select(filter.as_ref(), &sort, &key);
    let page = Page {
        current: q.page,
        per_page: q.per_page,
        total: sel.len(),
    };
    let range = page.range();
    let mut out = Vec::with_capacity(range.len() * 900 + 2048);
    write_envelope(&mut out, urls, page, |o| {
        for (n, i) in range.enumerate() {
            if n > 0 {
                o.push(b',');
            }
            let record = &table.records[sel.position(table, i)];
            match table.corrupt.get(&record.id()) {
                None => record.write_json(o, opts),
                Some(fields) => {
                    let mut v = record.to_value();
                    if let Some(obj) = v.as_object_mut() {
                        obj.extend(fields.clone());
                    }
                    serde_json::to_writer(&mut *o, &v).expect("JSON values serialize");
                }
            }
        }
    });
    json_bytes(StatusCode::OK, out)
}

fn render_entity<E: Entity>(
    state: &Shared,
    org: &OrgStore,
    q: &ListQuery,
    urls: &PageUrls,
) -> Response {
    let strict = state.quirks().strict_timestamps;
    let opts = state.ser_opts();
    let table = E::table(org).read().expect("table lock");
    render(&table, q, strict, &opts, urls)
}

/// `GET /2.0/organizations/{org}/{entity}`
pub async fn org_list(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((org, entity)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let org = match authorize_org(&state, &caller, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(kind) = EntityKind::from_path(&entity) else {
        return not_found();
    };
    let q = match parse_query(uri.query()) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let urls = PageUrls::new(&origin(&headers), uri.path(), &q.params);
    // Serializing a page takes well under a millisecond, so it runs inline (block_in_place
    // would panic on the current-thread runtimes tests use).
    with_entity!(kind, E => render_entity::<E>(&state, &org, &q, &urls))
}

/// `GET /2.0/organizations/{org}`
pub async fn organization(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(org): Path<String>,
) -> Response {
    match authorize_org(&state, &caller, &org) {
        Ok(o) => {
            let mut out = Vec::with_capacity(2048);
            o.org.write_json(&mut out, &SerOpts::default());
            json_bytes(StatusCode::OK, out)
        }
        Err(r) => r,
    }
}

/// `GET /2.0/apps/{client_id}/organizations`: only the caller's own client.
pub async fn app_organizations(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(client_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if client_id != caller.client_id {
        return forbidden();
    }
    let q = match parse_query(uri.query()) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let orgs: Vec<_> = state
        .store
        .orgs
        .values()
        .filter(|o| o.client_id == client_id)
        .map(|o| o.org.clone())
        .collect();
    let table = Table::new(orgs);
    let urls = PageUrls::new(&origin(&headers), uri.path(), &q.params);
    let strict = state.quirks().strict_timestamps;
    render(&table, &q, strict, &SerOpts::default(), &urls)
}

/// `GET /2.0/{entity}`: global lists are not open to API clients.
pub async fn global_list(Path(entity): Path<String>) -> Response {
    if EntityKind::from_path(&entity).is_some() || entity == "transaction-items" {
        forbidden()
    } else {
        not_found()
    }
}
