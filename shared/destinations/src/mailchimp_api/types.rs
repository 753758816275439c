//! Request and response bodies, and the client's error.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum MailchimpError {
    #[error("invalid Mailchimp API key: {0}")]
    InvalidKey(String),
    #[error("Mailchimp answered {status} {title}: {detail}")]
    Api {
        status: u16,
        title: String,
        detail: String,
    },
    #[error("Mailchimp request failed: {0}")]
    Transport(String),
    #[error("unexpected Mailchimp answer: {0}")]
    Decode(String),
}

impl MailchimpError {
    pub fn status(&self) -> Option<u16> {
        match self {
            MailchimpError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A member that unsubscribed or was cleaned cannot be subscribed again: an expected
    /// outcome, never retried.
    pub fn is_compliance(&self) -> bool {
        matches!(self, MailchimpError::Api { title, .. } if title.to_lowercase().contains("compliance state"))
    }
}

/// `application/problem+json`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListInfo {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub stats: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MergeField {
    #[serde(default)]
    pub merge_id: u64,
    pub tag: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub field_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewMergeField {
    pub tag: String,
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub public: bool,
}

/// One member of a batch upsert (the batch has no `status_if_new`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchMember {
    pub email_address: String,
    /// A new member's status; an existing member's too, but only in a batch sent with
    /// `update_existing: true` (which decides whether existing members' status changes).
    pub status: String,
    pub merge_fields: BTreeMap<String, serde_json::Value>,
    /// Added to the member's tags (the batch is sent with `sync_tags: false`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchRequest {
    pub members: Vec<BatchMember>,
    /// Whether existing members' status changes to their `status`.
    pub update_existing: bool,
    pub sync_tags: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchResponse {
    #[serde(default)]
    pub new_members: Vec<AckedMember>,
    #[serde(default)]
    pub updated_members: Vec<AckedMember>,
    #[serde(default)]
    pub errors: Vec<MemberError>,
    #[serde(default)]
    pub total_created: u64,
    #[serde(default)]
    pub total_updated: u64,
    #[serde(default)]
    pub error_count: u64,
}

/// The part of a written member the destination reads back (the rest is skipped unparsed).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AckedMember {
    #[serde(default)]
    pub tags: Vec<TagRef>,
}

/// A member's tag as Mailchimp shows it: the id is the tag's static segment id.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TagRef {
    pub id: u64,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemberError {
    #[serde(default)]
    pub email_address: String,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub field_message: Option<String>,
}

impl MemberError {
    pub fn is_compliance(&self) -> bool {
        self.error.to_lowercase().contains("compliance state")
    }
}

/// A segment of a list; tags are the static ones, named as the tag.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Segment {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub member_count: u64,
    #[serde(default, rename = "type")]
    pub segment_type: String,
}

/// `POST /lists/{id}/segments/{segment_id}`: at most 500 addresses each way.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SegmentMembersRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_to_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_to_remove: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SegmentMembersResponse {
    #[serde(default)]
    pub total_added: u64,
    #[serde(default)]
    pub total_removed: u64,
    #[serde(default)]
    pub errors: Vec<SegmentMembersError>,
    #[serde(default)]
    pub error_count: u64,
}

/// Addresses a segment change did not apply to, and why.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SegmentMembersError {
    #[serde(default)]
    pub email_addresses: Vec<String>,
    #[serde(default)]
    pub error: String,
}
