//! Laravel-style pagination envelope with absolute page URLs that keep the other query
//! parameters (filter, sort, per_page, ...).

use crate::data::record::write_str;
use std::io::Write;

/// Builds page URLs for one request.
pub struct PageUrls {
    path: String,
    before: String,
    after: String,
}

fn encode(params: &[&(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

impl PageUrls {
    /// `origin` like `http://127.0.0.1:8080`, `path` the request path, `params` the decoded
    /// query in order. `page` keeps its position if the request had it, else goes last.
    pub fn new(origin: &str, path: &str, params: &[(String, String)]) -> Self {
        let at = params
            .iter()
            .position(|(k, _)| k == "page")
            .unwrap_or(params.len());
        fn keep(range: &[(String, String)]) -> Vec<&(String, String)> {
            range.iter().filter(|(k, _)| k != "page").collect()
        }
        let before = encode(&keep(&params[..at]));
        let after = if at < params.len() {
            encode(&keep(&params[at + 1..]))
        } else {
            String::new()
        };
        PageUrls {
            path: format!("{origin}{path}"),
            before,
            after,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn url(&self, page: usize) -> String {
        let mut u =
            String::with_capacity(self.path.len() + self.before.len() + self.after.len() + 16);
        u.push_str(&self.path);
        u.push('?');
        if !self.before.is_empty() {
            u.push_str(&self.before);
            u.push('&');
        }
        u.push_str("page=");
        u.push_str(&page.to_string());
        if !self.after.is_empty() {
            u.push('&');
            u.push_str(&self.after);
        }
        u
    }
}

/// Page numbers shown in `links`: all of them for short lists, else the first two, a window
/// of three around the current page and the last two, with `None` for the "..." gaps.
pub fn link_pages(current: usize, last: usize) -> Vec<Option<usize>> {
    if last <= 12 {
        return (1..=last).map(Some).collect();
    }
    let mut pages: Vec<usize> = vec![1, 2, last - 1, last];
    pages.extend(current.saturating_sub(3).max(1)..=(current + 3).min(last));
    pages.sort_unstable();
    pages.dedup();
    let mut out = Vec::with_capacity(pages.len() + 2);
    let mut prev = 0;
    for p in pages {
        if p > prev + 1 {
            out.push(None);
        }
        out.push(Some(p));
        prev = p;
    }
    out
}

fn write_opt_url(out: &mut Vec<u8>, url: Option<String>) {
    match url {
        Some(u) => write_str(out, &u),
        None => out.extend_from_slice(b"null"),
    }
}

/// Paging numbers of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub current: usize,
    pub per_page: usize,
    pub total: usize,
}

impl Page {
    pub fn last_page(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// Index range of the records on this page (empty past the end).
    pub fn range(&self) -> std::ops::Range<usize> {
        let start = (self.current - 1)
            .saturating_mul(self.per_page)
            .min(self.total);
        let end = (start + self.per_page).min(self.total);
        start..end
    }
}

/// Writes the whole envelope; `write_data` appends the comma-separated records.
pub fn write_envelope(
    out: &mut Vec<u8>,
    urls: &PageUrls,
    page: Page,
    write_data: impl FnOnce(&mut Vec<u8>),
) {
    let last = page.last_page();
    let range = page.range();
    let cur = page.current;
    write!(out, "{{\"current_page\":{cur},\"data\":[").expect("vec write");
    write_data(out);
    out.extend_from_slice(b"],\"first_page_url\":");
    write_str(out, &urls.url(1));
    out.extend_from_slice(b",\"from\":");
    if range.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        write!(out, "{}", range.start + 1).expect("vec write");
    }
    write!(out, ",\"last_page\":{last},\"last_page_url\":").expect("vec write");
    write_str(out, &urls.url(last));
    out.extend_from_slice(b",\"links\":[");
    // Like Laravel: past the end, "previous" is still current - 1.
    let prev = (cur > 1).then(|| urls.url(cur - 1));
    let next = (cur < last).then(|| urls.url(cur + 1));
    out.extend_from_slice(b"{\"url\":");
    write_opt_url(out, prev.clone());
    out.extend_from_slice(b",\"label\":\"&laquo; Previous\",\"active\":false}");
    for p in link_pages(cur.min(last), last) {
        out.extend_from_slice(b",{\"url\":");
        match p {
            Some(p) => {
                write_str(out, &urls.url(p));
                write!(out, ",\"label\":\"{p}\",\"active\":{}}}", p == cur).expect("vec write");
            }
            None => out.extend_from_slice(b"null,\"label\":\"...\",\"active\":false}"),
        }
    }
    out.extend_from_slice(b",{\"url\":");
    write_opt_url(out, next.clone());
    out.extend_from_slice(b",\"label\":\"Next &raquo;\",\"active\":false}],\"next_page_url\":");
    write_opt_url(out, next);
    out.extend_from_slice(b",\"path\":");
    write_str(out, urls.path());
    write!(out, ",\"per_page\":{},\"prev_page_url\":", page.per_page).expect("vec write");
    write_opt_url(out, prev);
    out.extend_from_slice(b",\"to\":");
    if range.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        write!(out, "{}", range.end).expect("vec write");
    }
    write!(out, ",\"total\":{}}}", page.total).expect("vec write");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn params(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    fn envelope(q: &str, page: Page) -> Value {
        let urls = PageUrls::new("http://h:1", "/2.0/x", &params(q));
        let mut out = Vec::new();
        write_envelope(&mut out, &urls, page, |o| {
            o.extend_from_slice(b"{\"id\":1}")
        });
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn urls_keep_params_and_page_position() {
        let urls = PageUrls::new(
            "http://h:1",
            "/2.0/x",
            &params("filter=updated_at%3E2025-01-01T00%3A00%3A00%2B0000&per_page=100"),
        );
        assert_eq!(
            urls.url(2),
            "http://h:1/2.0/x?filter=updated_at%3E2025-01-01T00%3A00%3A00%2B0000&per_page=100&page=2"
        );
        let urls = PageUrls::new("http://h:1", "/2.0/x", &params("page=3&sort=id%3Adesc"));
        assert_eq!(urls.url(4), "http://h:1/2.0/x?page=4&sort=id%3Adesc");
        assert_eq!(urls.path(), "http://h:1/2.0/x");
    }

    #[test]
    fn middle_last_and_empty_pages() {
        let v = envelope(
            "per_page=10",
            Page {
                current: 2,
                per_page: 10,
                total: 25,
            },
        );
        assert_eq!(v["from"], 11);
        assert_eq!(v["to"], 20);
        assert_eq!(v["last_page"], 3);
        assert_eq!(v["next_page_url"], "http://h:1/2.0/x?per_page=10&page=3");
        assert_eq!(v["prev_page_url"], "http://h:1/2.0/x?per_page=10&page=1");
        let links = v["links"].as_array().unwrap();
        assert_eq!(links.len(), 5);
        assert_eq!(links[2]["active"], true);
        let v = envelope(
            "",
            Page {
                current: 3,
                per_page: 10,
                total: 25,
            },
        );
        assert_eq!(v["next_page_url"], Value::Null);
        assert_eq!((v["from"].clone(), v["to"].clone()), (21.into(), 25.into()));
        let v = envelope(
            "",
            Page {
                current: 1,
                per_page: 20,
                total: 0,
            },
        );
        assert_eq!(v["last_page"], 1);
        assert_eq!(
            (v["from"].clone(), v["to"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(v["next_page_url"], Value::Null);
        assert_eq!(v["prev_page_url"], Value::Null);
    }

    #[test]
    fn link_window() {
        assert_eq!(link_pages(1, 3), vec![Some(1), Some(2), Some(3)]);
        let w = link_pages(50, 100);
        assert_eq!(w.first(), Some(&Some(1)));
        assert!(
            w.contains(&None)
                && w.contains(&Some(47))
                && w.contains(&Some(53))
                && w.contains(&Some(100))
        );
    }
}
