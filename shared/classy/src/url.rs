//! Request URLs. Query values are percent-encoded here, exactly once: everything except
//! RFC 3986 unreserved characters, so `>=` is `%3E%3D` and `+` is `%2B` (never a space).

use classy_sync_core::domain::{Entity, OrgId};
use classy_sync_core::ports::source::MAX_PER_PAGE;
use classy_sync_core::ports::ListQuery;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but `A-Z a-z 0-9 - . _ ~` is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// The path (no query) of an organization-scoped list: safe for logs and error messages.
pub(crate) fn org_list_path(api_base: &str, org: OrgId, entity: Entity) -> String {
    format!("{api_base}/organizations/{org}/{}", entity.api_path())
}

/// `GET {api_base}/apps/{client_id}/organizations` (path only).
pub(crate) fn app_orgs_path(api_base: &str, client_id: &str) -> String {
    format!("{api_base}/apps/{}/organizations", encode(client_id))
}

/// `page=P&per_page=N[&filter=...][&sort=...]`, each value encoded once.
pub(crate) fn list_query_string(query: &ListQuery) -> String {
    let page = query.page.max(1);
    let per_page = query.per_page.clamp(1, MAX_PER_PAGE);
    let mut q = format!("page={page}&per_page={per_page}");
    if let Some(filter) = &query.filter {
        q.push_str("&filter=");
        q.push_str(&encode(&filter.expression()));
    }
    if let Some(sort) = &query.sort {
        q.push_str("&sort=");
        q.push_str(&encode(&sort.expression()));
    }
    q
}

/// Path without its query, for logs and errors: strips anything after `?` and the origin.
pub(crate) fn loggable_path(url: &str) -> &str {
    let no_query = url.split('?').next().unwrap_or(url);
    match no_query.find("://") {
        Some(i) => {
            let rest = &no_query[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => no_query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classy_sync_core::ports::{Filter, FilterOp, Sort};

    #[test]
    fn filter_is_encoded_exactly_once() {
        let q = ListQuery {
            filter: Some(Filter::new(
                "updated_at",
                FilterOp::Ge,
                "2025-04-20T00:00:00+0000",
            )),
            sort: None,
            page: 1,
            per_page: 100,
        };
        let s = list_query_string(&q);
        assert_eq!(
            s,
            "page=1&per_page=100&filter=updated_at%3E%3D2025-04-20T00%3A00%3A00%2B0000"
        );
        assert!(!s.contains("%25"), "double encoded: {s}");
        assert!(!s.contains('+'), "a raw + would read as a space: {s}");
    }

    #[test]
    fn every_operator_is_encoded() {
        for (op, enc) in [
            (FilterOp::Eq, "%3D"),
            (FilterOp::Ne, "%21%3D"),
            (FilterOp::Lt, "%3C"),
            (FilterOp::Le, "%3C%3D"),
            (FilterOp::Gt, "%3E"),
            (FilterOp::Ge, "%3E%3D"),
        ] {
            let q = ListQuery {
                filter: Some(Filter::new("id", op, "7")),
                ..ListQuery::default()
            };
            assert!(
                list_query_string(&q).ends_with(&format!("filter=id{enc}7")),
                "{op:?}"
            );
        }
    }

    #[test]
    fn sort_page_and_clamping() {
        let q = ListQuery {
            filter: None,
            sort: Some(Sort::asc("updated_at")),
            page: 0,
            per_page: 500,
        };
        assert_eq!(
            list_query_string(&q),
            "page=1&per_page=100&sort=updated_at%3Aasc"
        );
        let q = ListQuery {
            per_page: 0,
            sort: Some(Sort::desc("id")),
            page: 3,
            ..ListQuery::default()
        };
        assert_eq!(list_query_string(&q), "page=3&per_page=1&sort=id%3Adesc");
    }

    #[test]
    fn encoded_url_survives_url_parsing_unchanged() {
        let q = ListQuery {
            filter: Some(Filter::new(
                "updated_at",
                FilterOp::Gt,
                "2025-04-20T00:00:00+0000",
            )),
            ..ListQuery::default()
        };
        let full = format!(
            "{}?{}",
            org_list_path("https://api.classy.org/2.0", 42, Entity::Transactions),
            list_query_string(&q)
        );
        let parsed = reqwest::Url::parse(&full).unwrap();
        assert_eq!(parsed.as_str(), full);
        let filter: Vec<_> = parsed
            .query_pairs()
            .filter(|(k, _)| k == "filter")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(filter, vec!["updated_at>2025-04-20T00:00:00+0000"]);
    }

    #[test]
    fn paths() {
        assert_eq!(
            org_list_path("http://h/2.0", 9, Entity::RecurringPlans),
            "http://h/2.0/organizations/9/recurring-donation-plans"
        );
        assert_eq!(
            app_orgs_path("http://h/2.0", "a b/c"),
            "http://h/2.0/apps/a%20b%2Fc/organizations"
        );
        assert_eq!(
            loggable_path("http://h:1/2.0/organizations/9/supporters?page=2&filter=x"),
            "/2.0/organizations/9/supporters"
        );
    }
}
