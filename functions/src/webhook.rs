//! `webhook`: Classy (GoFundMe Pro) webhooks, delivered by Svix to a Lambda Function URL at
//! `POST /webhooks/classy/{organization_id}`. The engine's [`WebhookReceiver`] verifies the
//! signature with the organization's secret, dedupes by `svix-id` and enqueues coalesced
//! incremental syncs; this module only maps the Function URL event to it and back. Neither
//! the body nor the secret is logged.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use classy_sync_core::domain::webhook::{SvixHeaders, MAX_BODY_BYTES};
use classy_sync_core::engine::webhooks::{WebhookOutcome, WebhookReceiver};

/// The path prefix the organization id follows.
pub const PATH_PREFIX: &str = "/webhooks/classy/";

/// The organization id in `/webhooks/classy/{organization_id}` (a trailing `/` allowed).
pub fn org_from_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

fn respond(status: u16, body: String) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status.into();
    r.headers.insert(
        "content-type",
        "application/json".parse().expect("a valid header value"),
    );
    r.body = Some(body);
    r
}

fn refuse(status: u16, error: &str) -> LambdaFunctionUrlResponse {
    respond(status, serde_json::json!({ "error": error }).to_string())
}

/// Handles one Function URL request.
pub async fn handle(
    receiver: &WebhookReceiver,
    request: LambdaFunctionUrlRequest,
) -> LambdaFunctionUrlResponse {
    let method = request.request_context.http.method.as_deref().unwrap_or("");
    let path = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("");
    let Some(org) = org_from_path(path) else {
        return refuse(
            404,
            "no such endpoint: POST /webhooks/classy/{organization_id}",
        );
    };
    if !method.eq_ignore_ascii_case("POST") {
        return refuse(405, "POST only");
    }
    let raw = request.body.unwrap_or_default();
    let body = if request.is_base64_encoded {
        // Base64 is 4/3 of the bytes: refuse what cannot fit before decoding it.
        if raw.len() > MAX_BODY_BYTES / 3 * 4 + 4 {
            return refuse(413, "body over 256 KB");
        }
        match base64::engine::general_purpose::STANDARD.decode(raw.as_bytes()) {
            Ok(b) => b,
            Err(_) => return refuse(400, "body is not valid base64"),
        }
    } else {
        raw.into_bytes()
    };
    let headers = SvixHeaders::from_pairs(
        request
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    let outcome: WebhookOutcome = receiver.receive(org, &headers, &body).await;
    respond(outcome.status(), outcome.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_organization_comes_from_the_path() {
        assert_eq!(org_from_path("/webhooks/classy/4021"), Some("4021"));
        assert_eq!(org_from_path("/webhooks/classy/4021/"), Some("4021"));
        assert_eq!(org_from_path("/webhooks/classy/"), None);
        assert_eq!(org_from_path("/webhooks/classy/1/2"), None);
        assert_eq!(org_from_path("/webhooks/other/1"), None);
    }
}
