//! The Classy API as the engine sees it: one page of an organization's records per call.
//! `classy::ClassyClient` implements it over HTTP; the engine chooses filters and paging.

use crate::domain::{Entity, OrgId};
use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::value::RawValue;
use std::fmt;

/// The OAuth client (Classy "application") an organization is read with.
#[derive(Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl FilterOp {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "!=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
        }
    }
}

/// `filter={field}{op}{value}`; the client URL-encodes the whole expression exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    pub value: String,
}

impl Filter {
    pub fn new(field: &str, op: FilterOp, value: impl Into<String>) -> Self {
        Filter {
            field: field.to_string(),
            op,
            value: value.into(),
        }
    }

    /// The expression before encoding, e.g. `updated_at>=2025-04-20T00:00:00+0000`.
    pub fn expression(&self) -> String {
        format!("{}{}{}", self.field, self.op.as_str(), self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub descending: bool,
}

impl Sort {
    pub fn asc(field: &str) -> Self {
        Sort {
            field: field.to_string(),
            descending: false,
        }
    }

    pub fn desc(field: &str) -> Self {
        Sort {
            field: field.to_string(),
            descending: true,
        }
    }

    /// `updated_at:asc`
    pub fn expression(&self) -> String {
        format!(
            "{}:{}",
            self.field,
            if self.descending { "desc" } else { "asc" }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    pub page: u32,
    pub per_page: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            sort: None,
            page: 1,
            per_page: MAX_PER_PAGE,
        }
    }
}

/// Classy's maximum page size.
pub const MAX_PER_PAGE: u32 = 100;

/// One page: the records still raw (the engine types them, naming the record that fails),
/// and the envelope facts the pager needs.
#[derive(Debug)]
pub struct SourcePage {
    pub records: Vec<Box<RawValue>>,
    pub current_page: u32,
    pub last_page: u32,
    pub total: u64,
    pub has_next: bool,
    /// HTTP requests this page took: retries and any token request included.
    pub requests: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The credentials were refused (not retried).
    #[error("Classy refused the credentials of client {client_id}: {message}")]
    Unauthorized { client_id: String, message: String },
    #[error("Classy forbids this request: {0}")]
    Forbidden(String),
    #[error("Classy has no such resource: {0}")]
    NotFound(String),
    #[error("Classy rejected the request: {0}")]
    BadRequest(String),
    /// Still rate limited, failing or unreachable after every retry.
    #[error("Classy unavailable after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The answer could not be read (malformed JSON, missing envelope).
    #[error("Classy answer could not be read: {0}")]
    Decode(String),
    #[error("Classy client configuration: {0}")]
    Config(String),
}

#[async_trait]
pub trait ClassySource: Send + Sync {
    async fn list_page(
        &self,
        creds: &AppCredentials,
        org: OrgId,
        entity: Entity,
        query: &ListQuery,
    ) -> Result<SourcePage, SourceError>;

    /// [`ClassySource::list_page`] with the HTTP requests it took (retries and any token
    /// request included), also when it failed; `None` when a failed call's requests are not
    /// known (this default: a client that does not count them).
    async fn list_page_counted(
        &self,
        creds: &AppCredentials,
        org: OrgId,
        entity: Entity,
        query: &ListQuery,
    ) -> (Result<SourcePage, SourceError>, Option<u32>) {
        let r = self.list_page(creds, org, entity, query).await;
        let n = r.as_ref().ok().map(|p| p.requests);
        (r, n)
    }

    /// HTTP requests sent so far (auth included, retries included): API efficiency.
    fn calls_made(&self) -> u64;
}
