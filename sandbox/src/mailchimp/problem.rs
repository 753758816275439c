//! Mailchimp errors: `application/problem+json` with type, title, status, detail, instance.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

const DOCS: &str = "https://mailchimp.com/developer/marketing/docs/errors/";

fn body_response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn json(status: StatusCode, v: &Value) -> Response {
    body_response(
        status,
        "application/json; charset=utf-8",
        serde_json::to_vec(v).expect("json"),
    )
}

pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    body_response(status, "application/json; charset=utf-8", body)
}

/// A problem document; `extra` fields (e.g. `errors`) are merged in.
pub fn problem(status: u16, title: &str, detail: &str, extra: Option<Value>) -> Response {
    let mut v = json!({
        "type": DOCS,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": uuid::Uuid::new_v4().to_string(),
    });
    if let (Some(Value::Object(extra)), Some(obj)) = (extra, v.as_object_mut()) {
        obj.extend(extra);
    }
    body_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/problem+json; charset=utf-8",
        serde_json::to_vec(&v).expect("json"),
    )
}

pub fn api_key_missing() -> Response {
    problem(
        401,
        "API Key Missing",
        "Your request did not include an API key.",
        None,
    )
}

pub fn api_key_invalid() -> Response {
    problem(
        401,
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        None,
    )
}

pub fn not_found() -> Response {
    problem(
        404,
        "Resource Not Found",
        "The requested resource could not be found.",
        None,
    )
}

/// 400 "Invalid Resource" naming the offending field.
pub fn invalid(field: &str, message: &str) -> Response {
    problem(
        400,
        "Invalid Resource",
        &format!("The resource submitted could not be validated: {message}"),
        Some(json!({"errors": [{"field": field, "message": message}]})),
    )
}

pub fn bad_json(why: &str) -> Response {
    problem(
        400,
        "JSON Parse Exception",
        &format!("We encountered an unspecified JSON parsing error: {why}"),
        None,
    )
}

pub fn compliance(email: &str) -> Response {
    problem(
        400,
        "Member In Compliance State",
        &format!(
            "{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."
        ),
        None,
    )
}

pub fn too_many_requests(limit: usize) -> Response {
    problem(
        429,
        "Too Many Requests",
        &format!("You have exceeded the limit of {limit} simultaneous connections."),
        None,
    )
}

/// A 403 with an HTML page, as the network in front of Mailchimp answers a key over its
/// limit: no problem document.
pub fn forbidden_html() -> Response {
    let mut r = Response::new(Body::from(
        "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>\
         You don't have permission to access this server.</BODY></HTML>\n",
    ));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

/// A real permission error: a problem document titled "Forbidden".
pub fn forbidden() -> Response {
    problem(
        403,
        "Forbidden",
        "You don't have permission to access this resource.",
        None,
    )
}

/// An injected error status: 403 comes with an empty body (seen in production), the rest as
/// problem documents.
pub fn injected(status: u16) -> Response {
    if status == 403 {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let title = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let detail = match status {
        429 => "You have exceeded the limit of simultaneous connections.",
        500 => "An unexpected internal error has occurred. Please contact Support for more information.",
        503 => "This service is temporarily unavailable.",
        _ => "Injected by the sandbox.",
    };
    problem(status, title, detail, None)
}
