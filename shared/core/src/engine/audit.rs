//! The audit trail in the store: partition `AUDIT`, `HEAD` (the last entry's sequence number,
//! hash and time, versioned) and `ENTRY#<seq, 15 digits>`. An append is one transaction: the
//! new entry (only if its key is free) and the head (only if nobody moved it since it was
//! read); a concurrent appender loses the condition, reads the new head and tries again, so
//! concurrent appenders stay one chain. Entries expire after the retention
//! ([`EngineOptions::audit_retention`](super::EngineOptions)); the head never does.

use super::{Datastore, EngineError};
use crate::domain::audit::{verify_chain, AuditEntry, AuditHead, ChainBreak, VerifyReport};
use crate::domain::keys::{audit_entry_sk, AUDIT_ENTRY_PREFIX, AUDIT_HEAD_SK, AUDIT_PK};
use crate::domain::OrgId;
use crate::ports::store::{for_each_page, Condition, Item, SkRange, WriteOp};
use crate::retry::Backoff;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

/// What an audited command did, before it is chained.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Who: the OS user or the AWS caller's ARN.
    pub actor: String,
    /// The command, e.g. `org add`.
    pub action: String,
    /// What it acted on, e.g. `org 42`.
    pub target: String,
    pub org: Option<OrgId>,
    /// `Err(message)` when the command failed.
    pub outcome: Result<(), String>,
    /// The state before, without any secret value (only its digest is stored).
    pub before: Option<Value>,
    /// The state after, without any secret value (only its digest is stored).
    pub after: Option<Value>,
}

/// Appends that lose the race this many times in a row give up.
const MAX_APPEND_ATTEMPTS: u32 = 60;

/// The verification's answer: what was checked, or what is broken.
pub type AuditVerdict = Result<VerifyReport, ChainBreak>;

impl Datastore {
    /// Appends one entry to the chain (retried while other appenders move the head).
    pub async fn append_audit(&self, record: AuditRecord) -> Result<AuditEntry, EngineError> {
        let backoff = Backoff::full(Duration::from_millis(5), Duration::from_millis(200));
        let retention = i64::try_from(self.options.audit_retention.as_secs()).unwrap_or(i64::MAX);
        for attempt in 1..=MAX_APPEND_ATTEMPTS {
            let (head, version) = match self.store.get(AUDIT_PK, AUDIT_HEAD_SK).await? {
                Some(item) => (Some(item.parse::<AuditHead>()?), item.version),
                None => {
                    // No head but a first entry: the head was deleted; appending would
                    // start a second chain over the first.
                    if self
                        .store
                        .get(AUDIT_PK, &audit_entry_sk(1))
                        .await?
                        .is_some()
                    {
                        return Err(EngineError::Invalid(
                            "the audit trail's head is missing while entries exist \
                             (see `classy-sync audit verify`)"
                                .into(),
                        ));
                    }
                    (None, 0)
                }
            };
            let mut now = self.clock.now();
            // Times never go backwards along the chain (clocks of two hosts may differ).
            if let Some(prev) = head
                .as_ref()
                .and_then(|h| DateTime::parse_from_rfc3339(&h.at).ok())
            {
                now = now.max(prev.with_timezone(&Utc));
            }
            let entry = AuditEntry::chained(
                head.as_ref(),
                now,
                &record.actor,
                &record.action,
                &record.target,
                record.org,
                &record.outcome,
                record.before.as_ref(),
                record.after.as_ref(),
            );
            let entry_item = Item::json(AUDIT_PK, audit_entry_sk(entry.seq), &entry)
                .with_version(1)
                .with_expiry(now.timestamp().saturating_add(retention));
            let head_item =
                Item::json(AUDIT_PK, AUDIT_HEAD_SK, &entry.head()).with_version(version + 1);
            let head_cond = if version == 0 {
                Condition::NotExists
            } else {
                Condition::VersionIs(version)
            };
            match self
                .store
                .transact(vec![
                    (WriteOp::Put(entry_item), Condition::NotExists),
                    (WriteOp::Put(head_item), head_cond),
                ])
                .await
            {
                Ok(()) => return Ok(entry),
                Err(e) if e.is_condition_failed() => {
                    tokio::time::sleep(backoff.delay(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Invalid(format!(
            "audit trail: {MAX_APPEND_ATTEMPTS} attempts to append lost to concurrent appenders"
        )))
    }

    /// The head of the chain, if anything was ever recorded.
    pub async fn audit_head(&self) -> Result<Option<AuditHead>, EngineError> {
        Ok(match self.store.get(AUDIT_PK, AUDIT_HEAD_SK).await? {
            Some(item) => Some(item.parse()?),
            None => None,
        })
    }

    /// Entries in sequence order, written at or after `since` and concerning `org` (when
    /// given).
    pub async fn audit_entries(
        &self,
        since: Option<DateTime<Utc>>,
        org: Option<OrgId>,
    ) -> Result<Vec<AuditEntry>, EngineError> {
        let mut out = Vec::new();
        for_each_page(
            self.store.as_ref(),
            AUDIT_PK,
            &SkRange::prefix(AUDIT_ENTRY_PREFIX),
            self.options.scan_page,
            |items| {
                for item in items {
                    let e: AuditEntry = item.parse()?;
                    if org.is_some() && e.org != org {
                        continue;
                    }
                    if let Some(since) = since {
                        let at = DateTime::parse_from_rfc3339(&e.at)
                            .map(|t| t.with_timezone(&Utc))
                            .ok();
                        if at.is_some_and(|at| at < since) {
                            continue;
                        }
                    }
                    out.push(e);
                }
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    /// Reads the head and every entry and checks the chain (see
    /// [`verify_chain`]): `Ok(Err(break))` names what is broken; `Err` is a store failure.
    pub async fn verify_audit(&self, retention: Duration) -> Result<AuditVerdict, EngineError> {
        let head = self.audit_head().await?;
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut broken: Option<ChainBreak> = None;
        for_each_page(
            self.store.as_ref(),
            AUDIT_PK,
            &SkRange::prefix(AUDIT_ENTRY_PREFIX),
            self.options.scan_page,
            |items| {
                for item in items {
                    if broken.is_some() {
                        return Ok(());
                    }
                    match serde_json::from_str::<AuditEntry>(&item.data) {
                        Ok(e) if item.sk == audit_entry_sk(e.seq) => entries.push(e),
                        Ok(e) => {
                            broken = Some(ChainBreak::Misplaced {
                                key: item.sk,
                                seq: e.seq,
                            })
                        }
                        Err(err) => {
                            broken = Some(ChainBreak::Unreadable {
                                key: item.sk,
                                message: err.to_string(),
                            })
                        }
                    }
                }
                Ok(())
            },
        )
        .await?;
        if let Some(b) = broken {
            return Ok(Err(b));
        }
        Ok(verify_chain(
            &entries,
            head.as_ref(),
            self.clock.now(),
            retention,
        ))
    }
}
