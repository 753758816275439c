//! Segment tags leave members through the tag's static segment: one
//! `POST /lists/{id}/segments/{segment_id}` removes the tag from up to 500 addresses. The
//! segment ids come with every member Mailchimp writes (`tags[{id, name}]`), and a member
//! losing a tag is always written in the same run, so its tags' ids are known; a tag not
//! seen, or a segment gone meanwhile (a tag deleted and made again gets a new id), is looked
//! up with `GET /lists/{id}/segments?type=static`, once per run.

use super::NAME;
use crate::mailchimp_api::{MailchimpClient, MailchimpError, SegmentMembersRequest};
use classy_sync_core::ports::PluginError;
use std::collections::BTreeMap;

/// Addresses per segment call (Mailchimp's limit).
pub const MAX_SEGMENT_MEMBERS: usize = 500;

/// Tag name → static segment id for one list, for the length of a run.
#[derive(Debug, Default)]
pub struct SegmentIds {
    ids: BTreeMap<String, u64>,
    /// Looked up in Mailchimp during this run (not again).
    fresh: bool,
}

impl SegmentIds {
    /// Ids seen on written members.
    pub fn learn(&mut self, ids: BTreeMap<String, u64>) {
        self.ids.extend(ids);
    }

    async fn id(
        &mut self,
        client: &MailchimpClient,
        list: &str,
        tag: &str,
    ) -> Result<Option<u64>, PluginError> {
        if let Some(id) = self.ids.get(tag) {
            return Ok(Some(*id));
        }
        if self.fresh {
            return Ok(None);
        }
        self.look_up(client, list).await?;
        Ok(self.ids.get(tag).copied())
    }

    async fn look_up(&mut self, client: &MailchimpClient, list: &str) -> Result<(), PluginError> {
        let segments = client
            .static_segments(list)
            .await
            .map_err(|e| PluginError::destination(NAME, format!("listing tags: {e}")))?;
        // Complete and current: replaces whatever was learned before.
        self.ids = segments.into_iter().map(|s| (s.name, s.id)).collect();
        self.fresh = true;
        Ok(())
    }

    /// Removes `tag` from the members (hash, address), at most [`MAX_SEGMENT_MEMBERS`].
    /// `Ok(Err(reason))`: Mailchimp did not take the call; the tag stays remembered as set.
    /// Addresses Mailchimp reports as not on the list cannot carry the tag: done as well.
    pub async fn remove_tag(
        &mut self,
        client: &MailchimpClient,
        list: &str,
        tag: &str,
        members: &[(String, String)],
    ) -> Result<Result<(), String>, PluginError> {
        let req = SegmentMembersRequest {
            members_to_add: Vec::new(),
            members_to_remove: members.iter().map(|(_, e)| e.clone()).collect(),
        };
        loop {
            // No segment by that name: nobody carries the tag.
            let Some(id) = self.id(client, list, tag).await? else {
                return Ok(Ok(()));
            };
            match client.segment_members(list, id, &req).await {
                Ok(_) => return Ok(Ok(())),
                Err(MailchimpError::Api { status: 404, .. }) if !self.fresh => {
                    self.look_up(client, list).await?;
                }
                Err(e) => return Ok(Err(e.to_string())),
            }
        }
    }
}
