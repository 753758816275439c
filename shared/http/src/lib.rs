//! Outbound HTTP to addresses that users configure (Slack, webhooks, change-feed receivers):
//! [`url_guard`] refuses private and metadata addresses and pins the checked address, and
//! [`post`] sends with the receiver's `Retry-After` honoured within a bound.

pub mod post;
pub mod url_guard;

pub use post::post_honouring_429;
pub use url_guard::{CheckedUrl, UrlError, UrlPolicy};
