//! A key-value store with DynamoDB-like primitives: items addressed by partition key and
//! sort key, conditional puts, range queries within a partition, batch writes and
//! all-or-nothing transactions. The SQLite adapter and the DynamoDB adapter both implement it
//! and both pass the testkit's conformance suite (`classy-sync-testkit`).

use async_trait::async_trait;

/// One stored item. `data` is the JSON body; `version` supports optimistic concurrency;
/// `expires_at` (unix seconds) is the TTL and the expiry of leases; `gsi1` is an optional
/// secondary partition key (hashed email for cross-organization lookups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub data: String,
    pub version: u64,
    pub expires_at: Option<i64>,
    pub gsi1: Option<String>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: impl Into<String>) -> Self {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            data: data.into(),
            version: 0,
            expires_at: None,
            gsi1: None,
        }
    }

    pub fn json<T: serde::Serialize>(
        pk: impl Into<String>,
        sk: impl Into<String>,
        value: &T,
    ) -> Self {
        // Serializing our own plain structs cannot fail; a map with non-string keys would.
        let data = serde_json::to_string(value).expect("store items serialize to JSON");
        Item::new(pk, sk, data)
    }

    pub fn with_version(mut self, v: u64) -> Self {
        self.version = v;
        self
    }

    pub fn with_expiry(mut self, at: i64) -> Self {
        self.expires_at = Some(at);
        self
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_str(&self.data)
            .map_err(|e| StoreError::Corrupt(format!("item {}/{}: {e}", self.pk, self.sk)))
    }
}

/// A write guard, evaluated atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// No item exists under the key.
    NotExists,
    /// The stored item has exactly this version.
    VersionIs(u64),
    /// No item exists, or its `expires_at` is before `now` (lease takeover).
    NotExistsOrExpired {
        now: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
}

impl SkRange {
    pub fn prefix(p: impl Into<String>) -> Self {
        SkRange::Prefix(p.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put(Item),
    Delete { pk: String, sk: String },
}

#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Sort key to pass as `start_after` for the next page; `None` when done.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("condition failed on {pk}/{sk}")]
    ConditionFailed { pk: String, sk: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("invalid store request: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, StoreError::ConditionFailed { .. })
    }
}

/// Largest transaction the store accepts (DynamoDB's limit).
pub const MAX_TRANSACT_ITEMS: usize = 100;

/// DynamoDB's key limits, enforced by every adapter so local runs fail where AWS would.
pub const MAX_PK_BYTES: usize = 2048;
pub const MAX_SK_BYTES: usize = 1024;
/// DynamoDB's item limit is 400 KB including attribute names; this counts keys and data.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Checks a key against the limits every adapter enforces.
pub fn validate_key(pk: &str, sk: &str) -> Result<(), StoreError> {
    if pk.is_empty() || sk.is_empty() {
        return Err(StoreError::Invalid(format!(
            "empty key {pk:?}/{sk:?}: keys must be non-empty"
        )));
    }
    if pk.len() > MAX_PK_BYTES || sk.len() > MAX_SK_BYTES {
        return Err(StoreError::Invalid(format!(
            "key too long ({} / {} bytes; limits {MAX_PK_BYTES} / {MAX_SK_BYTES})",
            pk.len(),
            sk.len()
        )));
    }
    Ok(())
}

impl Item {
    /// Checks the item against the limits every adapter enforces.
    pub fn validate(&self) -> Result<(), StoreError> {
        validate_key(&self.pk, &self.sk)?;
        let size = self.pk.len()
            + self.sk.len()
            + self.data.len()
            + self.gsi1.as_ref().map_or(0, String::len);
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::Invalid(format!(
                "item {}/{} is {size} bytes; the limit is {MAX_ITEM_BYTES}",
                self.pk, self.sk
            )));
        }
        if self.version > i64::MAX as u64 {
            return Err(StoreError::Invalid(format!(
                "item {}/{}: version {} is larger than {}",
                self.pk,
                self.sk,
                self.version,
                i64::MAX
            )));
        }
        if self.gsi1.as_deref() == Some("") {
            return Err(StoreError::Invalid(format!(
                "item {}/{}: gsi1 must be non-empty when present",
                self.pk, self.sk
            )));
        }
        Ok(())
    }
}

/// Checks a transaction against the rules every adapter enforces (DynamoDB's): at most
/// [`MAX_TRANSACT_ITEMS`] operations, valid items, no item touched twice.
pub fn validate_transaction(ops: &[(WriteOp, Condition)]) -> Result<(), StoreError> {
    if ops.len() > MAX_TRANSACT_ITEMS {
        return Err(StoreError::Invalid(format!(
            "transaction of {} operations; the limit is {MAX_TRANSACT_ITEMS}",
            ops.len()
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for (op, _) in ops {
        op.validate()?;
        let (pk, sk) = op.key();
        if !keys.insert((pk, sk)) {
            return Err(StoreError::Invalid(format!(
                "transaction touches {pk}/{sk} more than once"
            )));
        }
    }
    Ok(())
}

impl WriteOp {
    /// The key the write touches.
    pub fn key(&self) -> (&str, &str) {
        match self {
            WriteOp::Put(item) => (&item.pk, &item.sk),
            WriteOp::Delete { pk, sk } => (pk, sk),
        }
    }

    pub fn validate(&self) -> Result<(), StoreError> {
        match self {
            WriteOp::Put(item) => item.validate(),
            WriteOp::Delete { pk, sk } => validate_key(pk, sk),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// Gets many items of one partition; missing keys are absent from the answer.
    async fn batch_get(&self, pk: &str, sks: &[String]) -> Result<Vec<Item>, StoreError>;

    async fn put(&self, item: Item, cond: Condition) -> Result<(), StoreError>;

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> Result<(), StoreError>;

    /// Items of one partition in sort-key order, after `start_after`, at most `limit`.
    async fn query(
        &self,
        pk: &str,
        range: &SkRange,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Unconditional writes; each is applied exactly as given (idempotent), not atomically.
    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// All of the writes or none; any failed condition fails the whole transaction.
    async fn transact(&self, ops: Vec<(WriteOp, Condition)>) -> Result<(), StoreError>;

    /// Items whose secondary key `gsi1` equals `key`, across partitions.
    async fn query_gsi1(&self, key: &str, limit: usize) -> Result<Vec<Item>, StoreError>;

    /// Deletes every item of a range in chunks and returns how many it deleted. Not atomic:
    /// after a failure part of the range is gone, and calling it again finishes the job.
    /// The default reads keys a page at a time and deletes them with `batch_write`.
    async fn delete_range(&self, pk: &str, range: &SkRange) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            // From the start each time: what was deleted is gone, what was added is seen.
            let page = self.query(pk, range, None, DELETE_RANGE_CHUNK).await?;
            if page.items.is_empty() {
                return Ok(deleted);
            }
            deleted += page.items.len() as u64;
            let ops = page
                .items
                .into_iter()
                .map(|i| WriteOp::Delete { pk: i.pk, sk: i.sk })
                .collect();
            self.batch_write(ops).await?;
        }
    }
}

/// How many items [`Store::delete_range`] deletes per round.
pub const DELETE_RANGE_CHUNK: usize = 1000;

/// Every item of a range, parsed as `T`, read in pages of `page` items (for ranges whose
/// size is bounded by what they hold: definitions, alerts, organizations).
pub async fn parse_all<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    pk: &str,
    range: &SkRange,
    page: usize,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for_each_page(store, pk, range, page, |items| {
        for i in items {
            out.push(i.parse()?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Streams a whole range in pages of `page` items, calling `f` for each page.
pub async fn for_each_page<F>(
    store: &dyn Store,
    pk: &str,
    range: &SkRange,
    page: usize,
    mut f: F,
) -> Result<(), StoreError>
where
    F: FnMut(Vec<Item>) -> Result<(), StoreError>,
{
    let mut after: Option<String> = None;
    loop {
        let p = store.query(pk, range, after.as_deref(), page).await?;
        let done = p.next.is_none();
        after = p.next;
        f(p.items)?;
        if done {
            return Ok(());
        }
    }
}
