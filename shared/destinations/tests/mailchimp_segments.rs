//! Tag removal through static segments against the sandbox over real sockets: the lookup
//! of segment ids when a tag was not seen on a written member, the second lookup when a
//! remembered id is gone (404), and a tag nobody carries.

use classy_sandbox::{RunningSandbox, SandboxConfig};
use classy_sync_destinations::mailchimp::tags::SegmentIds;
use classy_sync_destinations::mailchimp_api::{
    subscriber_hash, BatchMember, BatchRequest, ClientOptions, MailchimpClient,
};
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

/// Removes `tag` from the members; returns the (lookup, removal) calls it took.
async fn remove(
    sb: &RunningSandbox,
    client: &MailchimpClient,
    ids: &mut SegmentIds,
    tag: &str,
    members: &[(String, String)],
) -> (u64, u64) {
    reset_counters(sb).await;
    let outcome = ids
        .remove_tag(client, sb.mailchimp_list_id(), tag, members)
        .await
        .unwrap();
    assert_eq!(outcome, Ok(()));
    let c = admin(sb, "/counters").await;
    let calls = |route: &str| c["by_route"][route].as_u64().unwrap_or(0);
    (
        calls("GET /lists/{id}/segments"),
        calls("POST /lists/{id}/segments/{segment_id}"),
    )
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
        status: "subscribed".into(),
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
    let mut ids = SegmentIds::default();
    let members = [pair("a@example.org"), pair("B@Example.org")];
    let calls = remove(&sb, &client, &mut ids, "Lapsed", &members).await;
    assert_eq!(calls, (1, 1));
    let t = tags(&sb, list).await;
    assert_eq!(t["a@example.org"], ["Hand Picked"]);
    assert_eq!(t["b@example.org"], ["Lost"]);

    // A remembered id that is gone (the tag was deleted and made again): 404, one more
    // lookup, and the removal goes through.
    let mut ids = SegmentIds::default();
    ids.learn(BTreeMap::from([("Lost".to_string(), 9_999)]));
    let calls = remove(&sb, &client, &mut ids, "Lost", &[pair("c@example.org")]).await;
    assert_eq!(calls, (1, 2));
    assert!(tags(&sb, list).await["c@example.org"].is_empty());

    // A tag nobody carries has no segment: nothing to remove, no removal call, and no
    // second lookup in the same run.
    let calls = remove(
        &sb,
        &client,
        &mut ids,
        "Never Used",
        &[pair("a@example.org")],
    )
    .await;
    assert_eq!(calls, (0, 0));
}
