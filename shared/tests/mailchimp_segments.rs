//! Tag removal through static segments against the sandbox over real sockets: the lookup
//! of segment ids when a tag was not seen on a written member, the second lookup when a
//! remembered id is gone (404), and a tag nobody carries.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync::mailchimp::{
    subscriber_hash, BatchMember, BatchRequest, ClientOptions, MailchimpClient,
};
use classy_sync::plugins::mailchimp::tags::SegmentIds;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::BTreeMap;

async fn admin(sb: &RunningSandbox, path: &str) -> Value {
    reqwest::get(format!("{}/admin/mailchimp{path}", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn reset_counters(sb: &RunningSandbox) {
    reqwest::Client::new()
        .post(format!("{}/admin/mailchimp/counters/reset", sb.base_url()))
        .send()
        .await
        .unwrap();
}

fn calls(counters: &Value, route: &str) -> u64 {
    counters["by_route"][route].as_u64().unwrap_or(0)
}

/// Tags of each member, by address.
async fn tags(sb: &RunningSandbox, list: &str) -> BTreeMap<String, Vec<String>> {
    admin(sb, &format!("/lists/{list}/members")).await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let tags = m["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            (m["email_address"].as_str().unwrap().to_string(), tags)
        })
        .collect()
}

fn member(email: &str, tags: &[&str]) -> BatchMember {
    BatchMember {
        email_address: email.into(),
        status: None,
        status_if_new: "subscribed".into(),
        merge_fields: BTreeMap::new(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

fn pair(email: &str) -> (String, String) {
    (subscriber_hash(email), email.to_string())
}

#[tokio::test]
async fn segment_ids_are_looked_up_when_unknown_and_again_when_gone() {
    let sb = classy_sandbox::start(SandboxConfig {
        orgs: 1,
        supporters: 1,
        transactions: 1,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let list = sb.mailchimp_list_id();
    let client = MailchimpClient::new(
        SecretString::from(sb.mailchimp_api_key()),
        Some(&sb.mailchimp_api_base_url()),
        ClientOptions::default(),
    )
    .unwrap();
    let written = client
        .batch_upsert(
            list,
            &BatchRequest {
                members: vec![
                    member("a@example.org", &["Lapsed", "Hand Picked"]),
                    member("b@example.org", &["Lapsed", "Lost"]),
                    member("c@example.org", &["Lost"]),
                ],
                update_existing: true,
                sync_tags: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(written.error_count, 0);

    // Nothing learned: one lookup, then one call for both members.
    reset_counters(&sb).await;
    let mut ids = SegmentIds::default();
    let outcome = ids
        .remove_tag(
            &client,
            list,
            "Lapsed",
            &[pair("a@example.org"), pair("B@Example.org")],
        )
        .await
        .unwrap();
    assert_eq!(outcome, Ok(()));
    let c = admin(&sb, "/counters").await;
    assert_eq!(calls(&c, "GET /lists/{id}/segments"), 1, "{c}");
    assert_eq!(
        calls(&c, "POST /lists/{id}/segments/{segment_id}"),
        1,
        "{c}"
    );
    let t = tags(&sb, list).await;
    assert_eq!(t["a@example.org"], ["Hand Picked"]);
    assert_eq!(t["b@example.org"], ["Lost"]);

    // A remembered id that is gone (the tag was deleted and made again): 404, one more
    // lookup, and the removal goes through.
    reset_counters(&sb).await;
    let mut ids = SegmentIds::default();
    ids.learn(BTreeMap::from([("Lost".to_string(), 9_999)]));
    let outcome = ids
        .remove_tag(&client, list, "Lost", &[pair("c@example.org")])
        .await
        .unwrap();
    assert_eq!(outcome, Ok(()));
    let c = admin(&sb, "/counters").await;
    assert_eq!(calls(&c, "GET /lists/{id}/segments"), 1, "{c}");
    assert_eq!(
        calls(&c, "POST /lists/{id}/segments/{segment_id}"),
        2,
        "{c}"
    );
    assert!(tags(&sb, list).await["c@example.org"].is_empty());

    // A tag nobody carries has no segment: nothing to remove, no removal call.
    reset_counters(&sb).await;
    let outcome = ids
        .remove_tag(&client, list, "Never Used", &[pair("a@example.org")])
        .await
        .unwrap();
    assert_eq!(outcome, Ok(()));
    let c = admin(&sb, "/counters").await;
    // Already looked up in this run: not again.
    assert_eq!(calls(&c, "GET /lists/{id}/segments"), 0, "{c}");
    assert_eq!(
        calls(&c, "POST /lists/{id}/segments/{segment_id}"),
        0,
        "{c}"
    );
}
