//! Recording administrative actions in the audit trail (see docs/audit.md).
//!
//! Every mutating command calls [`record`] (or [`Audited::finish`]) once it reached the
//! store, with its outcome and the state before and after. Those states are digested, never
//! stored, and must hold no secret value: pass names, ids and settings, never a client
//! secret, signing secret or token.
//!
//! The actor is resolved once per process: the OS user locally (`USER`, else `LOGNAME`, else
//! `id -un`), the caller's ARN from STS `GetCallerIdentity` on `--backend aws`.
//!
//! When the audit write fails the change itself stays made: the command prints an error
//! naming the audit trail and exits non-zero.

use crate::runtime::Root;
use anyhow::{anyhow, Context, Result};
use classy_sync_core::domain::audit::retention_from_days;
use classy_sync_core::domain::OrgId;
use classy_sync_core::engine::audit::AuditRecord;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Days an audit entry is kept (default 365).
pub const ENV_RETENTION_DAYS: &str = "CLASSY_SYNC_AUDIT_RETENTION_DAYS";

static ACTOR: OnceCell<String> = OnceCell::const_new();

/// The OS user: `USER`, else `LOGNAME`, else what `id -un` prints, else `uid <n>`.
fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_owned();
            }
        }
    }
    let id = |arg: &str| {
        std::process::Command::new("id")
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    id("-un")
        .or_else(|| id("-u").map(|u| format!("uid {u}")))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Who is acting, resolved once per process.
pub async fn actor(root: &Root) -> Result<String> {
    ACTOR
        .get_or_try_init(|| async {
            match root {
                Root::Local(_) => Ok(os_user()),
                Root::Aws(r) => classy_sync_aws::caller_arn(&r.sdk)
                    .await
                    .map_err(anyhow::Error::from),
            }
        })
        .await
        .cloned()
}

/// The retention from `CLASSY_SYNC_AUDIT_RETENTION_DAYS` (default one year).
pub fn retention() -> Result<Duration> {
    retention_from_days(std::env::var(ENV_RETENTION_DAYS).ok().as_deref())
        .map_err(|e| anyhow!("{ENV_RETENTION_DAYS}: {e}"))
}

/// Appends one entry. `outcome` is `Err(message)` for a failed attempt; `before`/`after`
/// are the states (never a secret value), digested.
pub async fn record(
    root: &Root,
    action: &str,
    target: &str,
    org: Option<OrgId>,
    before: Option<Value>,
    after: Option<Value>,
    outcome: Result<(), String>,
) -> Result<()> {
    let write = async {
        let actor = actor(root).await.context("cannot tell who is acting")?;
        let mut data = root.data();
        data.options.audit_retention = retention()?;
        data.append_audit(AuditRecord {
            actor,
            action: action.to_owned(),
            target: target.to_owned(),
            org,
            outcome,
            before,
            after,
        })
        .await?;
        anyhow::Ok(())
    };
    write.await.map_err(|e| {
        anyhow!("the audit trail could not record {action} on {target} (the change itself stays made): {e:#}")
    })
}

/// A state for the trail: any serializable value (`None` if it does not serialize).
pub fn state<T: serde::Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// One audited action: what, on which target, the state before; [`Audited::finish`] records
/// the outcome and passes the command's own result on.
pub struct Audited<'a> {
    root: &'a Root,
    action: String,
    target: String,
    org: Option<OrgId>,
    before: Option<Value>,
}

impl<'a> Audited<'a> {
    pub fn new(root: &'a Root, action: &str, target: impl Into<String>) -> Self {
        Audited {
            root,
            action: action.to_owned(),
            target: target.into(),
            org: None,
            before: None,
        }
    }

    pub fn org(mut self, org: OrgId) -> Self {
        self.org = Some(org);
        self
    }

    pub fn before(mut self, state: Option<Value>) -> Self {
        self.before = state;
        self
    }

    /// Records `result` (its error message when it failed) with the state after, then
    /// returns it. A failed audit write turns a success into an error naming the audit trail;
    /// after a failed command its own error wins (the audit failure is printed).
    pub async fn finish<T, E>(
        self,
        result: std::result::Result<T, E>,
        after: impl FnOnce(&T) -> Option<Value>,
    ) -> Result<T>
    where
        E: Into<anyhow::Error>,
    {
        let result = result.map_err(Into::into);
        let (outcome, after) = match &result {
            Ok(v) => (Ok(()), after(v)),
            Err(e) => (Err(format!("{e:#}")), None),
        };
        let recorded = record(
            self.root,
            &self.action,
            &self.target,
            self.org,
            self.before,
            after,
            outcome,
        )
        .await;
        match (result, recorded) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(a)) => Err(a),
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(a)) => {
                eprintln!("error: {a:#}");
                Err(e)
            }
        }
    }
}
