//! The Mailchimp destination: keeps one audience equal to the organization's consented
//! supporters, with giving merge fields and donor-segment tags. Pure rules in [`member`],
//! settings in [`settings`], the HTTP client in [`crate::mailchimp_api`]; this module reads and
//! writes the member states (`PLUGIN#mailchimp#M#<hash>`) and talks to Mailchimp.
//!
//! Calls carry full loads: member changes are held ([`pending`]) until a 500-member batch is
//! full, across change sets, and the last partial batch goes out in `finish`; a tag leaves
//! members through its static segment, 500 addresses per call ([`tags`]), not one call per
//! member. Changes that set a status go in batches with `update_existing: true`, the others
//! (field and tag updates) in batches without it, so Mailchimp leaves those members' status
//! alone. Every member is sent once per change: an acknowledged write is remembered, and a
//! compliance refusal is final until the supporter's data changes (no follow-up call).

pub mod member;
pub mod pending;
pub mod settings;
pub mod tags;

use super::PluginSpec;
use crate::mailchimp_api::{
    BatchRequest, BatchResponse, ClientOptions, MailchimpClient, MailchimpError, NewMergeField,
};
use async_trait::async_trait;
use classy_sync_core::domain::keys;
use classy_sync_core::domain::keys::org_pk;
use classy_sync_core::domain::segments::SegmentRule;
use classy_sync_core::domain::Timestamp;
use classy_sync_core::ports::store::{Item, WriteOp};
use classy_sync_core::ports::{
    ChangeSet, Destination, DestinationContext, DestinationHealth, PluginConfig, PluginError,
    PushReport, Wants,
};
use futures::StreamExt;
use member::{desired, plan, DesiredMember, MemberChange, MemberState, MERGE_FIELDS};
use pending::Pending;
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
        addresses: true,
    },
    needs_secret: true,
    validate: |v| MailchimpSettings::parse(v).map(|_| ()),
    build: |c| Ok(Box::new(MailchimpDestination::new(c)?)),
};

/// What Mailchimp acknowledged for one member of one list.
pub fn member_sk(list: &str, hash: &str) -> String {
    format!("{}{list}#{hash}", keys::plugin_family_prefix(NAME, "M"))
}

/// Records that the merge fields exist in a list, so they are created once, not per run.
fn fields_sk() -> String {
    keys::plugin_item_sk(NAME, "FIELDS")
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct FieldsEnsured {
    list_id: String,
    tags: Vec<String>,
}

/// A member Mailchimp acknowledged: its hash, the state to remember, tags still to remove.
type Acked = (String, MemberState, Vec<String>);

/// What a round of batches came back with.
struct Sent {
    states: Vec<Acked>,
    /// Tag name → static segment id, as the written members show them.
    tag_ids: BTreeMap<String, u64>,
    failure: Option<PluginError>,
}

/// Members acknowledged but still waiting for tag removals, before every held removal is
/// sent even in part-filled calls (keeps memory bounded).
const MAX_AWAITING: usize = 5_000;

pub struct MailchimpDestination {
    settings: MailchimpSettings,
    rules: Vec<SegmentRule>,
    secret_name: Option<String>,
    client: Option<MailchimpClient>,
    client_options: ClientOptions,
    pending: Pending,
    segments: tags::SegmentIds,
    /// Requests in flight per key (settings, environment or 4), set by `prepare`.
    max_in_flight: usize,
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
            pending: Pending::default(),
            segments: tags::SegmentIds::default(),
            max_in_flight: settings::DEFAULT_MAX_IN_FLIGHT as usize,
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
                    classy_sync_core::ports::Condition::Always,
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
            if v.superseded {
                report.count("duplicate_address_skipped", 1);
                continue;
            }
            let Some(d) = desired(v, &self.rules, now) else {
                report.count("skipped_no_email", 1);
                continue;
            };
            let keep = match out.get(&d.hash) {
                Some(o) => {
                    report.count("duplicate_address_skipped", 1);
                    member::newer(&d, o)
                }
                None => true,
            };
            if keep {
                out.insert(d.hash.clone(), d);
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

    /// Sends the batches (up to `max_in_flight` at once, and never more for the key across
    /// processes); returns the states to remember, the tags' segment ids seen in the answers
    /// and the error of the first batch that failed outright, if any.
    async fn send(
        &self,
        changes: &[MemberChange],
        report: &mut PushReport,
    ) -> Result<Sent, PluginError> {
        let client = self.client()?;
        let list = self.list();
        // Status changes with `update_existing`, the rest without (their status stays).
        let (set_status, keep_status): (Vec<&MemberChange>, Vec<&MemberChange>) =
            changes.iter().partition(|c| c.changes_status());
        let size = self.settings.batch_size();
        let chunks: Vec<(&[&MemberChange], bool)> = set_status
            .chunks(size)
            .map(|c| (c, true))
            .chain(keep_status.chunks(size).map(|c| (c, false)))
            .collect();
        // Futures built in a plain loop (not a borrowing closure) keep the future `Send`.
        let mut futs = Vec::with_capacity(chunks.len());
        for (i, (chunk, update_existing)) in chunks.iter().enumerate() {
            let req = BatchRequest {
                members: chunk.iter().map(|c| c.batch_member()).collect(),
                update_existing: *update_existing,
                sync_tags: false,
            };
            futs.push(async move { (i, client.batch_upsert(list, &req).await) });
        }
        let mut results = futures::stream::iter(futs).buffer_unordered(self.max_in_flight.max(1));
        let mut states = Vec::new();
        let mut tag_ids = BTreeMap::new();
        let mut failure = None;
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(resp) => {
                    for m in resp.new_members.iter().chain(&resp.updated_members) {
                        for t in &m.tags {
                            tag_ids.insert(t.name.clone(), t.id);
                        }
                    }
                    self.settle(chunks[i].0, resp, report, &mut states)
                }
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(dest_err(e));
                    }
                }
            }
        }
        Ok(Sent {
            states,
            tag_ids,
            failure,
        })
    }

    /// Turns one batch answer into states to remember and report counts.
    fn settle(
        &self,
        chunk: &[&MemberChange],
        resp: BatchResponse,
        report: &mut PushReport,
        states: &mut Vec<Acked>,
    ) {
        let errors: HashMap<String, &crate::mailchimp_api::MemberError> = resp
            .errors
            .iter()
            .map(|e| (e.email_address.trim().to_lowercase(), e))
            .collect();
        for c in chunk {
            match errors.get(&c.desired.email.to_lowercase()) {
                // Final for this data: remembered as asked, so it is not sent again (in
                // this push or a later one) until the supporter's data changes. Tags it
                // left still go, through their segments.
                Some(e) if e.is_compliance() => {
                    report.count("compliance_skipped", 1);
                    states.push((c.desired.hash.clone(), c.blocked(), c.remove_tags.clone()));
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

    /// Sends the oldest held changes: every full batch of each kind (status changes, other
    /// changes), or (`all`) everything held, each member once. Acknowledged and refused
    /// members are stored, tag removals queued.
    async fn send_held(
        &mut self,
        ctx: &DestinationContext,
        report: &mut PushReport,
        all: bool,
    ) -> Result<(), PluginError> {
        let batch = self.settings.batch_size();
        let mut todo = Vec::new();
        for changes_status in [true, false] {
            let held = self.pending.held_count_of(changes_status);
            let n = if all { held } else { held / batch * batch };
            todo.extend(self.pending.take_of(changes_status, n));
        }
        if !todo.is_empty() {
            let Sent {
                states,
                tag_ids,
                failure,
            } = self.send(&todo, report).await?;
            self.segments.learn(tag_ids);
            let mut writes = Vec::with_capacity(states.len());
            for (hash, state, remove) in states {
                if remove.is_empty() {
                    writes.push((hash, state));
                } else {
                    let interim = self.pending.await_removal(&hash, state, &remove);
                    writes.push((hash, interim));
                }
            }
            self.save_states(ctx, &writes).await?;
            if let Some(e) = failure {
                return Err(e);
            }
        }
        self.flush_removals(ctx, report, all).await
    }

    /// Sends held tag removals: tags with a full call's worth, or (`all`, or too many members
    /// waiting) every one. Members whose removals are all answered get their final state.
    async fn flush_removals(
        &mut self,
        ctx: &DestinationContext,
        report: &mut PushReport,
        all: bool,
    ) -> Result<(), PluginError> {
        let per_call = tags::MAX_SEGMENT_MEMBERS;
        let everything = all || self.pending.awaiting_count() > MAX_AWAITING;
        let ready = self
            .pending
            .removal_tags(if everything { 1 } else { per_call });
        // Field borrows (not `self.client()`): the pending queues and segment ids change below.
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| PluginError::destination(NAME, "used before prepare"))?;
        let list = self.settings.list_id.trim();
        let mut finals = Vec::new();
        for tag in ready {
            loop {
                let waiting = self.pending.removal_len(&tag);
                if waiting == 0 || (!everything && waiting < per_call) {
                    break;
                }
                let members = self.pending.take_removals(&tag, per_call);
                let outcome = self
                    .segments
                    .remove_tag(client, list, &tag, &members)
                    .await?;
                let removed = outcome.is_ok();
                match outcome {
                    Ok(()) => report.count("tags_removed", members.len() as u64),
                    // Remembered as still set: the next push that looks at them tries again.
                    Err(reason) => {
                        for (_, email) in &members {
                            report.error(format!("{email}: removing tag {tag:?}: {reason}"));
                        }
                    }
                }
                for (hash, _) in &members {
                    if let Some(done) = self.pending.removal_answered(hash, &tag, removed) {
                        finals.push(done);
                    }
                }
            }
        }
        self.save_states(ctx, &finals).await
    }

    async fn save_states(
        &self,
        ctx: &DestinationContext,
        states: &[(String, MemberState)],
    ) -> Result<(), PluginError> {
        let pk = org_pk(ctx.org);
        let ops: Vec<WriteOp> = states
            .iter()
            .map(|(hash, state)| WriteOp::Put(Item::json(&pk, member_sk(self.list(), hash), state)))
            .collect();
        for chunk in ops.chunks(500) {
            ctx.store.batch_write(chunk.to_vec()).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Destination for MailchimpDestination {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn prepare(&mut self, ctx: &DestinationContext) -> Result<(), PluginError> {
        let secret = self.secret_name.clone().unwrap_or_else(|| {
            classy_sync_core::ports::destination::plugin_secret_name(ctx.org, NAME)
        });
        let key = ctx
            .secrets
            .get(&secret)
            .await
            .map_err(|e| PluginError::Credentials {
                plugin: NAME.into(),
                message: e.to_string(),
            })?;
        let base = self.settings.base_url_override()?;
        let limit = self.settings.max_in_flight()?;
        self.max_in_flight = limit as usize;
        let options = ClientOptions {
            max_in_flight: limit as usize,
            ..self.client_options.clone()
        };
        let mut client = MailchimpClient::new(key, base.as_deref(), options).map_err(|e| {
            PluginError::Credentials {
                plugin: NAME.into(),
                message: e.to_string(),
            }
        })?;
        // At most `limit` requests in flight for this key across every worker and process
        // on the store (its semaphore is named by the key's digest, never the key).
        if let Some(limiter) = &ctx.concurrency {
            let name = keys::mailchimp_semaphore_sk(&client.key_digest());
            client = client.with_shared_limit(limiter.clone(), name, limit);
        }
        self.client = Some(client);
        self.ensure_merge_fields(ctx).await
    }

    async fn push(
        &mut self,
        ctx: &DestinationContext,
        changes: &ChangeSet,
    ) -> Result<PushReport, PluginError> {
        let calls_before = self.client()?.calls();
        let throttled_before = self.client()?.throttled();
        let mut report = PushReport::default();
        let now = Timestamp(ctx.clock.now());
        let wanted = self.wanted(changes, now, &mut report);
        // A member with a change still held is compared with what that change started from.
        let known = self
            .known(
                ctx,
                wanted.keys().filter(|h| self.pending.held(h).is_none()),
            )
            .await?;
        let mut todo = Vec::new();
        let mut absent = Vec::new();
        for d in wanted.values() {
            if let Some(held) = self.pending.held(&d.hash) {
                // Two supporters of one address in different change sets: one is skipped.
                report.count("duplicate_address_skipped", 1);
                if !member::newer(d, &held.desired) {
                    continue;
                }
                let base = held.previous.clone();
                match plan(d, base.as_ref()) {
                    Some(c) => self.pending.hold(c),
                    None => {
                        self.pending.release(&d.hash);
                        if member::never_sent(base.as_ref()) {
                            absent.push((d.hash.clone(), member::absent(d)));
                        }
                    }
                }
                continue;
            }
            // Several supporters can share an address (in other change sets): the most
            // recently updated one keeps the member, the others do not flip it back and forth.
            if known.get(&d.hash).is_some_and(|k| k.owned_by_newer(d)) {
                report.count("duplicate_address_skipped", 1);
                continue;
            }
            let k = known.get(&d.hash);
            match plan(d, k) {
                Some(c) => todo.push(c),
                None if member::never_sent(k) => {
                    report.count("skipped_no_consent", 1);
                    // Remember who owns the address, so an older supporter sharing it is
                    // not sent in its place by a later push.
                    if k.is_none_or(|k| k.supporter != d.supporter) {
                        absent.push((d.hash.clone(), member::absent(d)));
                    }
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
        self.save_states(ctx, &absent).await?;
        for c in todo {
            self.pending.hold(c);
        }
        let outcome = self.send_held(ctx, &mut report, false).await;
        report.count("api_calls", self.client()?.calls() - calls_before);
        report.count("throttled", self.client()?.throttled() - throttled_before);
        outcome.map(|()| report)
    }

    async fn finish(&mut self, ctx: &DestinationContext) -> Result<PushReport, PluginError> {
        let mut report = PushReport::default();
        if ctx.dry_run {
            return Ok(report);
        }
        let calls_before = self.client()?.calls();
        let throttled_before = self.client()?.throttled();
        let outcome = self.send_held(ctx, &mut report, true).await;
        report.count("api_calls", self.client()?.calls() - calls_before);
        report.count("throttled", self.client()?.throttled() - throttled_before);
        outcome.map(|()| report)
    }

    fn calls_made(&self) -> Option<u64> {
        // The client is made by `prepare`, once per run: its counter is this run's calls.
        Some(self.client.as_ref().map_or(0, MailchimpClient::calls))
    }

    async fn health(&self, _ctx: &DestinationContext) -> Result<DestinationHealth, PluginError> {
        let client = self.client()?;
        if let Err(e) = client.ping().await {
            return Ok(DestinationHealth::unhealthy(format!("ping: {e}")));
        }
        Ok(match client.list(self.list()).await {
            Ok(l) => DestinationHealth::healthy(format!(
                "list {} ({}), {} members",
                l.id,
                l.name,
                l.stats.get("member_count").cloned().unwrap_or_default()
            )),
            Err(e) => DestinationHealth::unhealthy(format!("list {}: {e}", self.list())),
        })
    }

    async fn shutdown(&mut self) -> Result<(), PluginError> {
        self.client = None;
        Ok(())
    }
}
