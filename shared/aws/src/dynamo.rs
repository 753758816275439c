//! [`Store`] on one DynamoDB table.
//!
//! Table layout (the SAM template declares it; the tests create it the same way, in
//! `classy-sync-tests`' `aws_setup`):
//! hash key `pk` (S), range key `sk` (S); attributes `data` (S, the JSON body), `version` (N),
//! `expires_at` (N, the TTL attribute) and `gsi1` (S, optional); global secondary index `gsi1`
//! with hash key `gsi1`, range key `sk` and projection ALL.
//!
//! Semantics follow the SQLite adapter and the testkit's conformance suite: conditions are condition
//! expressions evaluated atomically by DynamoDB, reads are strongly consistent (except the GSI,
//! which DynamoDB only reads eventually consistently), and paging is exact.

use super::{describe, RetryPolicy};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use classy_sync_core::ports::store::validate_key;
use classy_sync_core::ports::{Condition, Item, Page, SkRange, Store, StoreError, WriteOp};
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};
use std::future::Future;

pub const ATTR_PK: &str = "pk";
pub const ATTR_SK: &str = "sk";
pub const ATTR_DATA: &str = "data";
pub const ATTR_VERSION: &str = "version";
pub const ATTR_EXPIRES_AT: &str = "expires_at";
pub const ATTR_GSI1: &str = "gsi1";
pub const GSI1_INDEX: &str = "gsi1";

/// DynamoDB's request limits.
const BATCH_GET_MAX: usize = 100;
const BATCH_WRITE_MAX: usize = 25;
/// Batch requests in flight at once for one call.
const BATCH_CONCURRENCY: usize = 4;

type Attrs = HashMap<String, AttributeValue>;

/// The DynamoDB store. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retry: RetryPolicy,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// The store on `settings.table` with a client for `sdk`.
    pub fn from_settings(sdk: &aws_config::SdkConfig, settings: &super::AwsSettings) -> Self {
        DynamoStore::new(Client::new(sdk), &settings.table)
    }

    /// Retries of unprocessed batch items and conflicting transactions.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn key(pk: &str, sk: &str) -> Attrs {
        HashMap::from([
            (ATTR_PK.to_owned(), AttributeValue::S(pk.to_owned())),
            (ATTR_SK.to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }

    async fn batch_get_chunk(&self, pk: &str, sks: Vec<String>) -> Result<Vec<Item>, StoreError> {
        let keys: Vec<Attrs> = sks.iter().map(|sk| Self::key(pk, sk)).collect();
        let table = self.table.as_str();
        let found = drain_unprocessed(keys, self.retry, "BatchGetItem", |keys| async move {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| unavailable("BatchGetItem", &e))?;
            let items = out
                .responses()
                .and_then(|r| r.get(table))
                .map(|items| items.iter().map(from_attrs).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default();
            let unprocessed = out
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            Ok((items, unprocessed))
        })
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn batch_write_chunk(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let requests = ops
            .into_iter()
            .map(write_request)
            .collect::<Result<Vec<_>, _>>()?;
        let table = self.table.as_str();
        drain_unprocessed(
            requests,
            self.retry,
            "BatchWriteItem",
            |requests| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(|e| unavailable("BatchWriteItem", &e))?;
                let unprocessed = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .unwrap_or_default();
                Ok(((), unprocessed))
            },
        )
        .await?;
        Ok(())
    }

    async fn query_pages(
        &self,
        index: Option<&str>,
        cond: Expr,
        mut start: Option<Attrs>,
        want: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        loop {
            let remaining = want - items.len();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(&cond.text)
                .set_expression_attribute_names(Some(cond.names.clone()))
                .set_expression_attribute_values(Some(cond.values.clone()))
                .set_exclusive_start_key(start.take())
                // The GSI can only be read eventually consistently.
                .consistent_read(index.is_none())
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| unavailable("Query", &e))?;
            for attrs in out.items() {
                items.push(from_attrs(attrs)?);
            }
            match out.last_evaluated_key() {
                Some(k) if items.len() < want && !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        items.truncate(want);
        Ok(items)
    }
}

/// Sends `pending` with `send` until nothing comes back unprocessed, waiting with backoff
/// between rounds; gives up after `retry.attempts` calls. Returns the outputs of all calls.
pub(crate) async fn drain_unprocessed<T, O, F, Fut>(
    mut pending: Vec<T>,
    retry: RetryPolicy,
    op: &str,
    mut send: F,
) -> Result<Vec<O>, StoreError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(O, Vec<T>), StoreError>>,
{
    let mut outputs = Vec::new();
    let mut attempt = 0;
    loop {
        let (out, unprocessed) = send(pending).await?;
        outputs.push(out);
        attempt += 1;
        if unprocessed.is_empty() {
            return Ok(outputs);
        }
        if attempt >= retry.attempts.max(1) {
            return Err(StoreError::Unavailable(format!(
                "{op}: {} requests still unprocessed after {attempt} attempts (throttled)",
                unprocessed.len()
            )));
        }
        tokio::time::sleep(retry.delay(attempt - 1)).await;
        pending = unprocessed;
    }
}

/// Groups writes into BatchWriteItem requests: one write per key (the last one given wins,
/// which is what applying them in order would leave), at most 25 per request.
pub(crate) fn plan_batch_write(ops: Vec<WriteOp>) -> Vec<Vec<WriteOp>> {
    let mut last: HashMap<(String, String), usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let (pk, sk) = op.key();
        last.insert((pk.to_owned(), sk.to_owned()), i);
    }
    let keep: HashSet<usize> = last.into_values().collect();
    let kept: Vec<WriteOp> = ops
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, op)| op)
        .collect();
    let mut chunks = Vec::with_capacity(kept.len().div_ceil(BATCH_WRITE_MAX));
    let mut it = kept.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(BATCH_WRITE_MAX).collect());
    }
    chunks
}

fn write_request(op: WriteOp) -> Result<WriteRequest, StoreError> {
    Ok(match op {
        WriteOp::Put(item) => WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(to_attrs(item)))
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
        WriteOp::Delete { pk, sk } => WriteRequest::builder()
            .delete_request(
                DeleteRequest::builder()
                    .set_key(Some(DynamoStore::key(&pk, &sk)))
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
    })
}

/// An expression with its placeholders.
#[derive(Debug, Clone, Default)]
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(mut self, placeholder: &str, attr: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attr.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, v: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), v);
        self
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn condition_expr(cond: Condition) -> Option<Expr> {
    let e = Expr::default;
    match cond {
        Condition::Always => None,
        Condition::NotExists => Some(
            Expr {
                text: "attribute_not_exists(#pk)".into(),
                ..e()
            }
            .name("#pk", ATTR_PK),
        ),
        Condition::VersionIs(v) => Some(
            Expr {
                text: "#v = :v".into(),
                ..e()
            }
            .name("#v", ATTR_VERSION)
            .value(":v", AttributeValue::N(v.to_string())),
        ),
        // A missing `expires_at` makes the comparison false: an item without expiry never
        // counts as expired.
        Condition::NotExistsOrExpired { now } => Some(
            Expr {
                text: "attribute_not_exists(#pk) OR #e < :now".into(),
                ..e()
            }
            .name("#pk", ATTR_PK)
            .name("#e", ATTR_EXPIRES_AT)
            .value(":now", AttributeValue::N(now.to_string())),
        ),
    }
}

/// The key condition of a query and the `ExclusiveStartKey` for `start_after`, or `None`
/// when no item can match (`start_after` at or beyond the end of the range).
///
/// DynamoDB refuses an exclusive start key outside the key condition, so `start_after` is
/// only passed on when it lies inside the range: before the range it changes nothing.
fn query_plan(
    pk: &str,
    range: &SkRange,
    start_after: Option<&str>,
) -> Option<(Expr, Option<Attrs>)> {
    let base = Expr {
        text: "#pk = :pk".into(),
        ..Expr::default()
    }
    .name("#pk", ATTR_PK)
    .value(":pk", AttributeValue::S(pk.to_owned()));
    let (expr, inside) = match range {
        SkRange::All => (base, start_after.is_some()),
        SkRange::Prefix(p) if p.is_empty() => (base, start_after.is_some()),
        SkRange::Prefix(p) => {
            let expr = Expr {
                text: "#pk = :pk AND begins_with(#sk, :p)".into(),
                ..base
            }
            .name("#sk", ATTR_SK)
            .value(":p", AttributeValue::S(p.clone()));
            let inside = match start_after {
                None => false,
                Some(a) if a.starts_with(p.as_str()) => true,
                Some(a) if a < p.as_str() => false,
                // Past every string with this prefix.
                Some(_) => return None,
            };
            (expr, inside)
        }
        SkRange::Between(lo, hi) => {
            if lo > hi {
                return None;
            }
            let expr = Expr {
                text: "#pk = :pk AND #sk BETWEEN :lo AND :hi".into(),
                ..base
            }
            .name("#sk", ATTR_SK)
            .value(":lo", AttributeValue::S(lo.clone()))
            .value(":hi", AttributeValue::S(hi.clone()));
            let inside = match start_after {
                None => false,
                Some(a) if a < lo.as_str() => false,
                Some(a) if a < hi.as_str() => true,
                Some(_) => return None,
            };
            (expr, inside)
        }
    };
    let start = match (inside, start_after) {
        (true, Some(a)) => Some(DynamoStore::key(pk, a)),
        _ => None,
    };
    Some((expr, start))
}

fn to_attrs(item: Item) -> Attrs {
    let mut m = HashMap::with_capacity(6);
    m.insert(ATTR_PK.to_owned(), AttributeValue::S(item.pk));
    m.insert(ATTR_SK.to_owned(), AttributeValue::S(item.sk));
    m.insert(ATTR_DATA.to_owned(), AttributeValue::S(item.data));
    m.insert(
        ATTR_VERSION.to_owned(),
        AttributeValue::N(item.version.to_string()),
    );
    if let Some(at) = item.expires_at {
        m.insert(
            ATTR_EXPIRES_AT.to_owned(),
            AttributeValue::N(at.to_string()),
        );
    }
    if let Some(g) = item.gsi1 {
        m.insert(ATTR_GSI1.to_owned(), AttributeValue::S(g));
    }
    m
}

fn from_attrs(m: &Attrs) -> Result<Item, StoreError> {
    let pk = m.get(ATTR_PK).and_then(|v| v.as_s().ok());
    let sk = m.get(ATTR_SK).and_then(|v| v.as_s().ok());
    let (Some(pk), Some(sk)) = (pk, sk) else {
        return Err(StoreError::Corrupt("item without string pk/sk".into()));
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("item {pk}/{sk}: {what}"));
    let string = |name: &str| -> Result<Option<String>, StoreError> {
        match m.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
            Some(_) => Err(corrupt(&format!("{name} is not a string"))),
        }
    };
    let number = |name: &str| -> Result<Option<&str>, StoreError> {
        match m.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => Ok(Some(n.as_str())),
            Some(_) => Err(corrupt(&format!("{name} is not a number"))),
        }
    };
    let data = string(ATTR_DATA)?.ok_or_else(|| corrupt("no data"))?;
    let version = number(ATTR_VERSION)?
        .ok_or_else(|| corrupt("no version"))?
        .parse::<u64>()
        .map_err(|_| corrupt("version is not a whole number"))?;
    let expires_at = number(ATTR_EXPIRES_AT)?
        .map(|n| n.parse::<i64>())
        .transpose()
        .map_err(|_| corrupt("expires_at is not a whole number"))?;
    Ok(Item {
        pk: pk.clone(),
        sk: sk.clone(),
        data,
        version,
        expires_at,
        gsi1: string(ATTR_GSI1)?,
    })
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Invalid(format!("DynamoDB request: {e}"))
}

fn unavailable<E, R>(op: &str, e: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    // A request DynamoDB refuses as malformed (too large, bad key) is the caller's error.
    if let SdkError::ServiceError(s) = e {
        if s.err().code() == Some("ValidationException") {
            return StoreError::Invalid(format!("DynamoDB {op}: {}", describe(e)));
        }
    }
    StoreError::Unavailable(format!("DynamoDB {op}: {}", describe(e)))
}

fn condition_failed(pk: &str, sk: &str) -> StoreError {
    StoreError::ConditionFailed {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        validate_key(pk, sk)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        out.item().map(from_attrs).transpose()
    }

    async fn batch_get(&self, pk: &str, sks: &[String]) -> Result<Vec<Item>, StoreError> {
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(sks.len());
        for sk in sks {
            validate_key(pk, sk)?;
            if seen.insert(sk.as_str()) {
                keys.push(sk.clone());
            }
        }
        let chunks: Vec<Vec<String>> = keys.chunks(BATCH_GET_MAX).map(<[_]>::to_vec).collect();
        let found: Vec<Vec<Item>> = futures::stream::iter(chunks)
            .map(|chunk| self.batch_get_chunk(pk, chunk))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn put(&self, item: Item, cond: Condition) -> Result<(), StoreError> {
        item.validate()?;
        let (pk, sk) = (item.pk.clone(), item.sk.clone());
        let expr = condition_expr(cond);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attrs(item)))
            .set_condition_expression(expr.as_ref().map(|e| e.text.clone()))
            .set_expression_attribute_names(expr.as_ref().and_then(Expr::names))
            .set_expression_attribute_values(expr.as_ref().and_then(Expr::values))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(condition_failed(&pk, &sk))
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> Result<(), StoreError> {
        validate_key(pk, sk)?;
        let expr = condition_expr(cond);
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .set_condition_expression(expr.as_ref().map(|e| e.text.clone()))
            .set_expression_attribute_names(expr.as_ref().and_then(Expr::names))
            .set_expression_attribute_values(expr.as_ref().and_then(Expr::values))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(condition_failed(pk, sk))
            }
            Err(e) => Err(unavailable("DeleteItem", &e)),
        }
    }

    async fn query(
        &self,
        pk: &str,
        range: &SkRange,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        if pk.is_empty() {
            return Err(StoreError::Invalid("query: empty partition key".into()));
        }
        if limit == 0 {
            return Err(StoreError::Invalid(
                "query: limit must be at least 1".into(),
            ));
        }
        let Some((expr, start)) = query_plan(pk, range, start_after) else {
            return Ok(Page::default());
        };
        // One extra item tells whether another page follows.
        let want = limit.saturating_add(1);
        let mut items = self.query_pages(None, expr, start, want).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| i.sk.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        for op in &ops {
            op.validate()?;
        }
        futures::stream::iter(plan_batch_write(ops))
            .map(|chunk| self.batch_write_chunk(chunk))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn transact(&self, ops: Vec<(WriteOp, Condition)>) -> Result<(), StoreError> {
        classy_sync_core::ports::store::validate_transaction(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, String)> = ops
            .iter()
            .map(|(op, _)| {
                let (pk, sk) = op.key();
                (pk.to_owned(), sk.to_owned())
            })
            .collect();
        let mut items = Vec::with_capacity(ops.len());
        for (op, cond) in ops {
            let expr = condition_expr(cond);
            let text = expr.as_ref().map(|e| e.text.clone());
            let names = expr.as_ref().and_then(Expr::names);
            let values = expr.as_ref().and_then(Expr::values);
            let item = match op {
                WriteOp::Put(item) => TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(to_attrs(item)))
                            .set_condition_expression(text)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
                WriteOp::Delete { pk, sk } => TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(Self::key(&pk, &sk)))
                            .set_condition_expression(text)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            };
            items.push(item);
        }
        // A transaction cancelled only by conflicts with other transactions is retried.
        let mut attempt = 0;
        loop {
            let out = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match out {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let Some(
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c),
            ) = e.as_service_error()
            else {
                return Err(unavailable("TransactWriteItems", &e));
            };
            let codes: Vec<&str> = c
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            if let Some(i) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
                return match keys.get(i) {
                    Some((pk, sk)) => Err(condition_failed(pk, sk)),
                    None => Err(unavailable("TransactWriteItems", &e)),
                };
            }
            let conflict_only = !codes.is_empty()
                && codes
                    .iter()
                    .all(|c| matches!(*c, "None" | "TransactionConflict"));
            attempt += 1;
            if !conflict_only || attempt >= self.retry.attempts.max(1) {
                return Err(unavailable("TransactWriteItems", &e));
            }
            tokio::time::sleep(self.retry.delay(attempt - 1)).await;
        }
    }

    async fn query_gsi1(&self, key: &str, limit: usize) -> Result<Vec<Item>, StoreError> {
        if key.is_empty() {
            return Err(StoreError::Invalid("query_gsi1: empty key".into()));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let expr = Expr {
            text: "#g = :g".into(),
            ..Expr::default()
        }
        .name("#g", ATTR_GSI1)
        .value(":g", AttributeValue::S(key.to_owned()));
        self.query_pages(Some(GSI1_INDEX), expr, None, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::Duration;

    fn put(sk: &str, data: &str) -> WriteOp {
        WriteOp::Put(Item::new("P", sk, data))
    }

    #[test]
    fn batch_write_plan_dedupes_last_wins_and_chunks_by_25() {
        let mut ops: Vec<WriteOp> = (0..60).map(|i| put(&format!("S{i:02}"), "first")).collect();
        ops.push(WriteOp::Delete {
            pk: "P".into(),
            sk: "S03".into(),
        });
        ops.push(put("S05", "second"));
        ops.push(put("S05", "third"));
        let chunks = plan_batch_write(ops);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![25, 25, 10]
        );
        let all: Vec<&WriteOp> = chunks.iter().flatten().collect();
        let keys: HashSet<(&str, &str)> = all.iter().map(|op| op.key()).collect();
        assert_eq!(keys.len(), 60, "one write per key");
        assert!(all.contains(&&WriteOp::Delete {
            pk: "P".into(),
            sk: "S03".into()
        }));
        assert!(all.contains(&&put("S05", "third")), "the last write wins");
        assert!(!all.contains(&&put("S05", "second")));
        for chunk in &chunks {
            let keys: HashSet<(&str, &str)> = chunk.iter().map(WriteOp::key).collect();
            assert_eq!(keys.len(), chunk.len(), "no key twice in a request");
        }
        assert!(plan_batch_write(Vec::new()).is_empty());
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn unprocessed_items_are_resent_until_done() {
        // A fake service that processes only the first two requests of every call.
        let calls = RefCell::new(Vec::new());
        let out = drain_unprocessed(
            (0..7).collect(),
            fast(),
            "BatchWriteItem",
            |reqs: Vec<u32>| {
                calls.borrow_mut().push(reqs.clone());
                let (done, rest) = reqs.split_at(reqs.len().min(2));
                let (done, rest) = (done.to_vec(), rest.to_vec());
                async move { Ok((done, rest)) }
            },
        )
        .await
        .expect("drained");
        assert_eq!(calls.borrow().len(), 4, "7 requests, 2 per call");
        assert_eq!(
            calls.borrow()[1],
            vec![2, 3, 4, 5, 6],
            "only the unprocessed are resent"
        );
        let mut done: Vec<u32> = out.into_iter().flatten().collect();
        done.sort();
        assert_eq!(done, (0..7).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn unprocessed_items_give_up_after_the_bound() {
        let calls = RefCell::new(0);
        let err = drain_unprocessed(vec![1, 2], fast(), "BatchWriteItem", |reqs: Vec<u32>| {
            *calls.borrow_mut() += 1;
            async move { Ok(((), reqs)) }
        })
        .await
        .expect_err("never processed");
        assert_eq!(*calls.borrow(), 5);
        match err {
            StoreError::Unavailable(m) => {
                assert!(
                    m.contains("BatchWriteItem") && m.contains("2 requests"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn query_plan_keeps_start_keys_inside_the_key_condition() {
        let start = |r: &SkRange, a: &str| {
            query_plan("P", r, Some(a))
                .map(|(_, s)| s.map(|k| k[ATTR_SK].as_s().expect("string sk").clone()))
        };
        let prefix = SkRange::prefix("A#");
        assert_eq!(
            start(&prefix, "A"),
            Some(None),
            "before the prefix: ignored"
        );
        assert_eq!(start(&prefix, "A#"), Some(Some("A#".into())));
        assert_eq!(start(&prefix, "A#0105"), Some(Some("A#0105".into())));
        assert_eq!(start(&prefix, "B"), None, "after the prefix: nothing");
        let between = SkRange::Between("A#005".into(), "A#012".into());
        assert_eq!(start(&between, "A#"), Some(None));
        assert_eq!(start(&between, "A#007"), Some(Some("A#007".into())));
        assert_eq!(start(&between, "A#012"), None);
        assert_eq!(start(&SkRange::All, "x"), Some(Some("x".into())));
        assert!(query_plan("P", &SkRange::Between("b".into(), "a".into()), None).is_none());
    }

    #[test]
    fn items_round_trip_through_attributes() {
        let item = Item {
            pk: "P".into(),
            sk: "S".into(),
            data: String::new(),
            version: u64::from(u32::MAX) + 7,
            expires_at: Some(-5),
            gsi1: Some("G".into()),
        };
        assert_eq!(from_attrs(&to_attrs(item.clone())).unwrap(), item);
        let bare = Item::new("P", "S", "x");
        let attrs = to_attrs(bare.clone());
        assert!(!attrs.contains_key(ATTR_EXPIRES_AT) && !attrs.contains_key(ATTR_GSI1));
        assert_eq!(from_attrs(&attrs).unwrap(), bare);
        let mut broken = attrs;
        broken.insert(ATTR_VERSION.into(), AttributeValue::S("1".into()));
        assert!(matches!(from_attrs(&broken), Err(StoreError::Corrupt(_))));
    }
}
