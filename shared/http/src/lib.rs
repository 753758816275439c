//! Outbound HTTP to addresses that users configure (Slack, webhooks, change-feed receivers):
//! [`url_guard`] refuses private and metadata addresses and pins the checked address,
//! [`post`] sends with the receiver's `Retry-After` honoured within a bound, [`body`] reads
//! answers with a size cap, [`redact`] keeps URL credentials out of messages and [`dev`] is
//! the deployment switch for development URLs.

pub mod body;
pub mod dev;
pub mod post;
pub mod redact;
pub mod url_guard;

pub use body::{read_capped, read_capped_text, BodyError};
pub use dev::{dev_urls_allowed, dev_urls_from, ENV_ALLOW_DEV_URLS};
pub use post::post_honouring_429;
pub use redact::redact_url_credentials;
pub use url_guard::{CheckedUrl, UrlError, UrlPolicy};
