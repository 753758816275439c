//! The Mailchimp destination: keeps one audience equal to the organization's consented
//! supporters, with giving merge fields and donor-segment tags. Pure rules in [`member`],
//! settings in [`settings`], the HTTP client in [`crate::mailchimp`]; this module reads and
//! writes the member states (`PLUGIN#mailchimp#M#<hash>`) and talks to Mailchimp.

pub mod member;
pub mod settings;

use super::PluginSpec;
use crate::domain::keys::org_pk;
use crate::domain::segments::SegmentRule;
use crate::domain::Timestamp;
use crate::mailchimp::{
    BatchRequest, BatchResponse, ClientOptions, MailchimpClient, MailchimpError, NewMergeField,
    TagUpdate,
};
use crate::ports::store::{Item, WriteOp};
use crate::ports::{
    ChangeSet, Destination, DestinationContext, DestinationHealth, PluginConfig, PluginError,
    PushReport, Wants,
};
use async_trait::async_trait;
use futures::StreamExt;
use member::{desired, plan, DesiredMember, KnownStatus, MemberChange, MemberState, MERGE_FIELDS};
use serde::{Deserialize, Serialize};
use settings::MailchimpSettings;
use std::collections::{BTreeMap, HashMap};

pub const NAME: &str = "mailchimp";

pub const SPEC: PluginSpec = PluginSpec {
    name: NAME,
    description: "Mailchimp audience: consented supporters, giving merge fields, segment tags",
    wants: Wants {
        supporters: true,
        transactions: false,
    },
    needs_secret: true,
    validate: |v| MailchimpSettings::parse(v).map(|_| ()),
    build: |c| Ok(Box::new(MailchimpDestination::new(c)?)),
};

/// What Mailchimp acknowledged for one member of one list.
pub fn member_sk(list: &str, hash: &str) -> String {
    format!("PLUGIN#{NAME}#M#{list}#{hash}")
}

/// Records that the merge fields exist in a list, so they are created once, not per run.
fn fields_sk() -> String {
    format!("PLUGIN#{NAME}#FIELDS")
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct FieldsEnsured {
    list_id: String,
    tags: Vec<String>,
}

/// A member Mailchimp acknowledged: its hash, the state to remember, tags still to remove.
type Acked = (String, MemberState, Vec<String>);

/// Tag calls (one per member that left a segment) in flight at once.
const TAG_CONCURRENCY: usize = 10;

pub struct MailchimpDestination {
    settings: MailchimpSettings,
    rules: Vec<SegmentRule>,
    secret_name: Option<String>,
    client: Option<MailchimpClient>,
    client_options: ClientOptions,
}

fn dest_err(e: MailchimpError) -> PluginError {
    PluginError::destination(NAME, e.to_string())
}

impl MailchimpDestination {
    pub fn new(config: &PluginConfig) -> Result<Self, PluginError> {
        let settings = MailchimpSettings::parse(&config.settings)?;
        Ok(MailchimpDestination {
            rules: settings.rules(),
            settings,
            secret_name: config.secret_name.clone(),
            client: None,
            client_options: ClientOptions::default(),
        })
    }

    pub fn with_client_options(mut self, o: ClientOptions) -> Self {
        self.client_options = o;
        self
    }

    fn client(&self) -> Result<&MailchimpClient, PluginError> {
        self.client
            .as_ref()
            .ok_or_else(|| PluginError::destination(NAME, "used before prepare"))
    }

    fn list(&self) -> &str {
        self.settings.list_id.trim()
    }

    /// Creates the merge fields the list lacks, once per list (remembered in the store).
    async fn ensure_merge_fields(&self, ctx: &DestinationContext) -> Result<(), PluginError> {
        let pk = org_pk(ctx.org);
        let wanted = FieldsEnsured {
            list_id: self.list().to_string(),
            tags: MERGE_FIELDS.iter().map(|(t, _, _)| t.to_string()).collect(),
        };
        if !ctx
            .config
            .settings
            .get("force_fields")
            .is_some_and(|v| v == true)
        {
            if let Some(item) = ctx.store.get(&pk, &fields_sk()).await? {
                if item.parse::<FieldsEnsured>().ok().as_ref() == Some(&wanted) {
                    return Ok(());
                }
            }
        }
        let client = self.client()?;
        let existing = client.merge_fields(self.list()).await.map_err(dest_err)?;
        for (tag, name, kind) in MERGE_FIELDS {
            if existing.iter().any(|f| f.tag.eq_ignore_ascii_case(tag)) {
                continue;
            }
            if ctx.dry_run {
                continue;
            }
            let field = NewMergeField {
                tag: tag.to_string(),
                name: name.to_string(),
                field_type: kind.to_string(),
                public: false,
            };
            match client.create_merge_field(self.list(), &field).await {
                Ok(_) => {}
                // Created meanwhile by another run: fine.
                Err(e)
                    if e.status() == Some(400) && e.to_string().to_lowercase().contains("tag") => {}
                Err(e) => return Err(dest_err(e)),
            }
        }
        if !ctx.dry_run {
            ctx.store
                .put(
                    Item::json(&pk, fields_sk(), &wanted),
                    crate::ports::Condition::Always,
                )
                .await?;
        }
        Ok(())
    }

    /// Wanted members by hash; two supporters with one address become one member (the most
    /// recently updated record wins).
    fn wanted(
        &self,
        changes: &ChangeSet,
        now: Timestamp,
        report: &mut PushReport,
    ) -> BTreeMap<String, DesiredMember> {
        let mut out: BTreeMap<String, DesiredMember> = BTreeMap::new();
        for v in &changes.supporters {
            report.considered += 1;
            let Some(d) = desired(v, &self.rules, now) else {
                report.count("skipped_no_email", 1);
                continue;
            };
            match out.get(&d.hash) {
                Some(o) if (o.updated_at, o.supporter) >= (d.updated_at, d.supporter) => {}
                _ => {
                    out.insert(d.hash.clone(), d);
                }
            }
        }
        out
    }

    async fn known(
        &self,
        ctx: &DestinationContext,
        hashes: impl Iterator<Item = &String>,
    ) -> Result<HashMap<String, MemberState>, PluginError> {
        let sks: Vec<String> = hashes.map(|h| member_sk(self.list(), h)).collect();
        let mut out = HashMap::with_capacity(sks.len());
        for chunk in sks.chunks(1000) {
            for item in ctx.store.batch_get(&org_pk(ctx.org), chunk).await? {
                let hash = item.sk.rsplit('#').next().unwrap_or_default().to_string();
                out.insert(hash, item.parse::<MemberState>()?);
            }
        }
        Ok(out)
    }

    /// Sends the batches (up to 10 in flight); returns the states to remember and the error
    /// of the first batch that failed outright, if any.
    async fn send(
        &self,
        changes: &[MemberChange],
        report: &mut PushReport,
    ) -> Result<(Vec<Acked>, Option<PluginError>), PluginError> {
        let client = self.client()?;
        let list = self.list();
        // Futures built in a plain loop (not a borrowing closure) keep the future `Send`.
        let chunks: Vec<&[MemberChange]> = changes.chunks(self.settings.batch_size()).collect();
        let mut futs = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let req = BatchRequest {
                members: chunk.iter().map(MemberChange::batch_member).collect(),
                update_existing: true,
                sync_tags: false,
            };
            futs.push(async move { (i, client.batch_upsert(list, &req).await) });
        }
        let mut results = futures::stream::iter(futs).buffer_unordered(client_concurrency());
        let mut states = Vec::new();
        let mut failure = None;
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(resp) => self.settle(chunks[i], resp, report, &mut states),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(dest_err(e));
                    }
                }
            }
        }
        Ok((states, failure))
    }

    /// Turns one batch answer into states to remember and report counts.
    fn settle(
        &self,
        chunk: &[MemberChange],
        resp: BatchResponse,
        report: &mut PushReport,
        states: &mut Vec<Acked>,
    ) {
        let errors: HashMap<String, &crate::mailchimp::MemberError> = resp
            .errors
            .iter()
            .map(|e| (e.email_address.trim().to_lowercase(), e))
            .collect();
        for c in chunk {
            match errors.get(&c.desired.email.to_lowercase()) {
                Some(e) if e.is_compliance() => {
                    report.count("compliance_skipped", 1);
                    states.push((c.desired.hash.clone(), c.blocked(), Vec::new()));
                }
                Some(e) => {
                    let field = e
                        .field
                        .as_deref()
                        .filter(|f| !f.is_empty())
                        .map(|f| format!(" ({f}: {})", e.field_message.as_deref().unwrap_or("")))
                        .unwrap_or_default();
                    report.error(format!(
                        "{}: {} [{}]{field}",
                        c.desired.email, e.error, e.error_code
                    ));
                }
                None => {
                    report.sent += 1;
                    report.count(c.kind.name(), 1);
                    states.push((
                        c.desired.hash.clone(),
                        c.acknowledged(),
                        c.remove_tags.clone(),
                    ));
                }
            }
        }
    }

    /// Removes the tags of segments members left (only those members; one call each).
    async fn remove_tags(
        &self,
        states: &mut [Acked],
        report: &mut PushReport,
    ) -> Result<(), PluginError> {
        let client = self.client()?;
        let list = self.list();
        let mut futs = Vec::new();
        for (i, (hash, _, remove)) in states.iter().enumerate() {
            if remove.is_empty() {
                continue;
            }
            let tags: Vec<TagUpdate> = remove
                .iter()
                .map(|t| TagUpdate {
                    name: t.clone(),
                    status: "inactive".into(),
                })
                .collect();
            let hash = hash.clone();
            futs.push(async move { (i, client.update_tags(list, &hash, &tags).await) });
        }
        let outcomes: Vec<(usize, Result<(), MailchimpError>)> = futures::stream::iter(futs)
            .buffer_unordered(TAG_CONCURRENCY)
            .collect()
            .await;
        for (i, outcome) in outcomes {
            let (_, state, remove) = &mut states[i];
            match outcome {
                Ok(()) => report.count("tags_removed", remove.len() as u64),
                Err(e) => {
                    // Remember the tags as still set, so the next push tries again.
                    for t in remove.iter() {
                        if !state.tags.contains(t) {
                            state.tags.push(t.clone());
                        }
                    }
                    report.error(format!("{}: removing tags {remove:?}: {e}", state.email));
                }
            }
        }
        Ok(())
    }
}

fn client_concurrency() -> usize {
    ClientOptions::default().max_in_flight
}

#[async_trait]
impl Destination for MailchimpDestination {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn prepare(&mut self, ctx: &DestinationContext) -> Result<(), PluginError> {
        let secret = self
            .secret_name
            .clone()
            .unwrap_or_else(|| crate::ports::destination::plugin_secret_name(ctx.org, NAME));
        let key = ctx
            .secrets
            .get(&secret)
            .await
            .map_err(|e| PluginError::Credentials {
                plugin: NAME.into(),
                message: e.to_string(),
            })?;
        let base = self.settings.base_url_override();
        self.client = Some(
            MailchimpClient::new(key, base.as_deref(), self.client_options.clone()).map_err(
                |e| PluginError::Credentials {
                    plugin: NAME.into(),
                    message: e.to_string(),
                },
            )?,
        );
        self.ensure_merge_fields(ctx).await
    }

    async fn push(
        &self,
        ctx: &DestinationContext,
        changes: &ChangeSet,
    ) -> Result<PushReport, PluginError> {
        let calls_before = self.client()?.calls();
        let mut report = PushReport::default();
        let now = Timestamp(ctx.clock.now());
        let wanted = self.wanted(changes, now, &mut report);
        let known = self.known(ctx, wanted.keys()).await?;
        let mut todo = Vec::new();
        for d in wanted.values() {
            // Several supporters can share an address (in other change sets): the most
            // recently updated one keeps the member, the others do not flip it back and forth.
            if known.get(&d.hash).is_some_and(|k| k.owned_by_newer(d)) {
                report.count("duplicate_address_skipped", 1);
                continue;
            }
            match plan(d, known.get(&d.hash)) {
                Some(c) => todo.push(c),
                None if !d.consent && !known.contains_key(&d.hash) => {
                    report.count("skipped_no_consent", 1)
                }
                None => report.unchanged += 1,
            }
        }
        if ctx.dry_run {
            for c in &todo {
                report.count(c.kind.name(), 1);
                if !c.remove_tags.is_empty() {
                    report.count("tags_removed", c.remove_tags.len() as u64);
                }
                report.diff.push(c.describe());
            }
            report.sent = todo.len() as u64;
            return Ok(report);
        }
        let (mut states, mut failure) = self.send(&todo, &mut report).await?;
        // Members Mailchimp refused to subscribe (compliance) still get their fields and
        // tags, without a status, in one follow-up round.
        let retry: Vec<MemberChange> = todo
            .iter()
            .filter_map(|c| {
                let blocked = states
                    .iter()
                    .find(|(h, s, _)| *h == c.desired.hash && s.status == KnownStatus::Blocked)?;
                plan(&c.desired, Some(&blocked.1))
            })
            .collect();
        if !retry.is_empty() {
            let (again, f) = self.send(&retry, &mut report).await?;
            for (hash, state, remove) in again {
                if let Some(slot) = states.iter_mut().find(|(h, _, _)| *h == hash) {
                    *slot = (hash, state, remove);
                }
            }
            failure = failure.or(f);
        }
        self.remove_tags(&mut states, &mut report).await?;
        let pk = org_pk(ctx.org);
        let ops: Vec<WriteOp> = states
            .iter()
            .map(|(hash, state, _)| {
                WriteOp::Put(Item::json(&pk, member_sk(self.list(), hash), state))
            })
            .collect();
        for chunk in ops.chunks(500) {
            ctx.store.batch_write(chunk.to_vec()).await?;
        }
        report.count("api_calls", self.client()?.calls() - calls_before);
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn health(&self, _ctx: &DestinationContext) -> Result<DestinationHealth, PluginError> {
        let client = self.client()?;
        if let Err(e) = client.ping().await {
            return Ok(DestinationHealth {
                healthy: false,
                detail: format!("ping: {e}"),
            });
        }
        Ok(match client.list(self.list()).await {
            Ok(l) => DestinationHealth {
                healthy: true,
                detail: format!(
                    "list {} ({}), {} members",
                    l.id,
                    l.name,
                    l.stats.get("member_count").cloned().unwrap_or_default()
                ),
            },
            Err(e) => DestinationHealth {
                healthy: false,
                detail: format!("list {}: {e}", self.list()),
            },
        })
    }

    async fn shutdown(&mut self) -> Result<(), PluginError> {
        self.client = None;
        Ok(())
    }
}
