//! A Mailchimp Marketing API 3.0 client: the calls the Mailchimp destination needs, with the
//! API's limits built in (requests in flight per key bounded, also across processes through
//! a shared semaphore; bounded retries with backoff on
//! 429/5xx/bare 403, 120 s per call) and the key kept out of every error and log.

mod client;
mod types;

pub use client::{
    base_url_for_key, is_bare_403, key_digest, subscriber_hash, ClientOptions, MailchimpClient,
};
pub use types::{
    AckedMember, BatchMember, BatchRequest, BatchResponse, ListInfo, MailchimpError, MemberError,
    MergeField, NewMergeField, Segment, SegmentMembersError, SegmentMembersRequest,
    SegmentMembersResponse, TagRef,
};
