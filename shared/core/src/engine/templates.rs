//! Tenant templates in the store (`TEMPLATES` / `TEMPLATE#<name>`, next to the built-in ones,
//! which are code) and applying one to an organization.
//!
//! Applying a template ([`PluginService::apply_template`]) first reads and checks everything,
//! then writes; each part maps onto the existing model:
//! - `schedule`: each entity's interval override is set on the organization (as `org
//!   schedule` does); entities the template does not name keep theirs.
//! - `plugins`: a configured plugin gets the template's settings merged over its own (top-level
//!   keys replaced) and validated by the plugin; a plugin not configured yet is not configured
//!   half-way: it is reported as pending (`classy-sync org plugin add ...` sets its secret,
//!   then the template is applied again).
//! - `alerts`: the organization's alert routing (`ORG#<id>` / `ALERTROUTE`) is set when every
//!   channel it names exists; otherwise it is reported as pending.
//! - `reports`: each preset becomes the report `<preset>-<org>` scoped to the organization;
//!   an identical one is left alone, a different one is replaced (applying twice creates
//!   nothing new); a preset whose Slack channel does not exist is reported as pending.

use super::{Datastore, EngineError, PluginService, ReportDefinitions};
use crate::channels::{self, ChannelError};
use crate::domain::keys::{org_pk, template_sk, ALERT_ROUTE_SK, TEMPLATES_PK, TEMPLATE_PREFIX};
use crate::domain::report::ReportDefinition;
use crate::domain::template::{self, AlertRouting, Template};
use crate::domain::{Entity, OrgId};
use crate::ports::store::{parse_all, Condition, Item, SkRange};
use crate::ports::PluginConfig;
use serde::{Deserialize, Serialize};

/// A stored template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    pub name: String,
    pub template: Template,
    pub created_at: String,
}

/// One template as `template list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateEntry {
    pub name: String,
    pub builtin: bool,
    pub description: Option<String>,
    pub template: Template,
}

/// What applying a template did to one organization.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TemplateApplied {
    pub org: OrgId,
    /// Interval overrides set (entity, seconds); those already in force are left out.
    pub schedule: Vec<(Entity, u64)>,
    /// Plugins whose settings changed.
    pub plugins: Vec<String>,
    /// Whether the alert routing changed.
    pub alert_routing: bool,
    /// Report definitions created.
    pub reports_created: Vec<String>,
    /// Report definitions replaced (they differed from the preset).
    pub reports_updated: Vec<String>,
    /// What could not be applied yet, and the command that makes it possible.
    pub pending: Vec<String>,
}

impl TemplateApplied {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        !self.schedule.is_empty()
            || !self.plugins.is_empty()
            || self.alert_routing
            || !self.reports_created.is_empty()
            || !self.reports_updated.is_empty()
    }

    /// One line per change and per pending part.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (e, s) in &self.schedule {
            out.push(format!("schedule {e}: every {s}s"));
        }
        for p in &self.plugins {
            out.push(format!("plugin {p}: settings updated"));
        }
        if self.alert_routing {
            out.push("alert routing set".into());
        }
        for r in &self.reports_created {
            out.push(format!("report {r} created"));
        }
        for r in &self.reports_updated {
            out.push(format!("report {r} updated"));
        }
        for p in &self.pending {
            out.push(format!("pending: {p}"));
        }
        out
    }
}

fn invalid(e: template::TemplateError) -> EngineError {
    EngineError::Invalid(e.to_string())
}

impl Datastore {
    /// The template called `name`: built-in or stored.
    pub async fn template(&self, name: &str) -> Result<Template, EngineError> {
        if let Some(t) = template::builtin(name) {
            return Ok(t);
        }
        template::validate_name(name).map_err(invalid)?;
        match self.store.get(TEMPLATES_PK, &template_sk(name)).await? {
            Some(item) => Ok(item.parse::<StoredTemplate>()?.template),
            None => Err(EngineError::Invalid(format!(
                "template {name:?} not found (see `classy-sync template list`)"
            ))),
        }
    }

    /// Stores a new template; a built-in name or an existing template is refused.
    pub async fn add_template(&self, name: &str, t: &Template) -> Result<(), EngineError> {
        template::validate_name(name).map_err(invalid)?;
        if template::is_builtin(name) {
            return Err(EngineError::Invalid(format!(
                "template {name:?} is built in and cannot be overwritten"
            )));
        }
        t.validate().map_err(invalid)?;
        let stored = StoredTemplate {
            name: name.to_string(),
            template: t.clone(),
            created_at: self.clock.now().to_rfc3339(),
        };
        match self
            .store
            .put(
                Item::json(TEMPLATES_PK, template_sk(name), &stored),
                Condition::NotExists,
            )
            .await
        {
            Err(e) if e.is_condition_failed() => Err(EngineError::Invalid(format!(
                "template {name:?} already exists (remove it first)"
            ))),
            other => Ok(other?),
        }
    }

    /// Removes a stored template; a built-in or unknown name is refused.
    pub async fn remove_template(&self, name: &str) -> Result<(), EngineError> {
        if template::is_builtin(name) {
            return Err(EngineError::Invalid(format!(
                "template {name:?} is built in and cannot be removed"
            )));
        }
        self.template(name).await?;
        self.store
            .delete(TEMPLATES_PK, &template_sk(name), Condition::Always)
            .await?;
        Ok(())
    }

    /// The built-in templates, then the stored ones by name.
    pub async fn list_templates(&self) -> Result<Vec<TemplateEntry>, EngineError> {
        let mut out: Vec<TemplateEntry> = template::BUILTIN_NAMES
            .iter()
            .filter_map(|n| {
                template::builtin(n).map(|t| TemplateEntry {
                    name: n.to_string(),
                    builtin: true,
                    description: t.description.clone(),
                    template: t,
                })
            })
            .collect();
        let stored: Vec<StoredTemplate> = parse_all(
            self.store.as_ref(),
            TEMPLATES_PK,
            &SkRange::prefix(TEMPLATE_PREFIX),
            200,
        )
        .await?;
        out.extend(stored.into_iter().map(|s| TemplateEntry {
            name: s.name,
            builtin: false,
            description: s.template.description.clone(),
            template: s.template,
        }));
        Ok(out)
    }

    /// The organization's stored alert routing, if any.
    pub async fn alert_routing(&self, org: OrgId) -> Result<Option<AlertRouting>, EngineError> {
        match self.store.get(&org_pk(org), ALERT_ROUTE_SK).await? {
            Some(i) => Ok(Some(i.parse()?)),
            None => Ok(None),
        }
    }
}

/// Whether a notification channel is configured.
async fn channel_exists(data: &Datastore, name: &str) -> Result<bool, EngineError> {
    match channels::load_channel(data.store.as_ref(), name).await {
        Ok(_) => Ok(true),
        Err(ChannelError::NotFound(_)) => Ok(false),
        Err(ChannelError::Store(e)) => Err(e.into()),
        Err(e) => Err(EngineError::Invalid(e.to_string())),
    }
}

/// Two definitions are the same preset when they differ at most in their creation time.
fn same_definition(a: &ReportDefinition, b: &ReportDefinition) -> bool {
    ReportDefinition {
        created_at: 0,
        ..a.clone()
    } == ReportDefinition {
        created_at: 0,
        ..b.clone()
    }
}

impl PluginService {
    /// Applies `template` to organization `org` (see the module's documentation): everything
    /// is read and checked before anything is written, so an invalid part (an unknown plugin,
    /// settings the plugin refuses) leaves the organization as it was. Applying the same
    /// template twice changes nothing the second time.
    pub async fn apply_template(
        &self,
        org: OrgId,
        template: &Template,
    ) -> Result<TemplateApplied, EngineError> {
        template.validate().map_err(invalid)?;
        let organization = self.data.get_org(org).await?;
        let mut out = TemplateApplied {
            org,
            ..TemplateApplied::default()
        };

        // Plan.
        out.schedule = template
            .schedule_secs()
            .into_iter()
            .filter(|(e, s)| organization.schedule.get(e) != Some(s))
            .collect();

        let mut plugin_writes: Vec<PluginConfig> = Vec::new();
        for (name, settings) in &template.plugins {
            let spec = self
                .plugins
                .find(name)
                .map_err(|e| EngineError::Invalid(format!("plugins.{name}: {e}")))?;
            match self.plugin_config(org, spec.name).await? {
                Some(existing) => {
                    let mut merged = match &existing.settings {
                        serde_json::Value::Object(m) => m.clone(),
                        _ => serde_json::Map::new(),
                    };
                    for (k, v) in settings {
                        merged.insert(k.clone(), v.clone());
                    }
                    let merged = serde_json::Value::Object(merged);
                    (spec.validate)(&merged)
                        .map_err(|e| EngineError::Invalid(format!("plugins.{name}: {e}")))?;
                    if merged != existing.settings {
                        plugin_writes.push(PluginConfig {
                            settings: merged,
                            ..existing
                        });
                    }
                }
                None => out.pending.push(format!(
                    "plugin {} {}: classy-sync org plugin add {org} {} (then apply the \
                     template again)",
                    spec.name,
                    if spec.needs_secret {
                        "needs its secret"
                    } else {
                        "is not configured"
                    },
                    spec.name
                )),
            }
        }

        let mut routing_write: Option<AlertRouting> = None;
        if let Some(routing) = &template.alerts {
            let mut missing = Vec::new();
            for c in &routing.channels {
                if !channel_exists(&self.data, c).await? {
                    missing.push(c.clone());
                }
            }
            if !missing.is_empty() {
                for c in missing {
                    out.pending.push(format!(
                        "alert routing needs notification channel {c}: classy-sync notify \
                         channel add {c} <kind>"
                    ));
                }
            } else if self.data.alert_routing(org).await?.as_ref() != Some(routing) {
                routing_write = Some(routing.clone());
            }
        }

        let reports = ReportDefinitions::new(self.data.clone(), self.secrets.clone());
        let now = self.data.clock.unix();
        // (definition, replaces an existing one)
        let mut report_writes: Vec<(ReportDefinition, bool)> = Vec::new();
        for preset in &template.reports {
            let mut def = preset.definition(org, now);
            let mut missing = Vec::new();
            for c in &def.recipients.slack_channels {
                if !channel_exists(&self.data, c).await? {
                    missing.push(c.clone());
                }
            }
            if !missing.is_empty() {
                for c in missing {
                    out.pending.push(format!(
                        "report {} needs Slack channel {c}: classy-sync notify channel add {c} \
                         slack (then apply the template again)",
                        def.id
                    ));
                }
                continue;
            }
            match reports.load(&def.id).await {
                Ok(existing) if same_definition(&existing, &def) => {}
                Ok(existing) => {
                    def.created_at = existing.created_at;
                    report_writes.push((def, true));
                }
                Err(EngineError::Invalid(_)) => report_writes.push((def, false)),
                Err(e) => return Err(e),
            }
        }

        // Write.
        for (entity, secs) in &out.schedule {
            self.data
                .set_org_interval(org, *entity, Some(*secs))
                .await?;
        }
        for config in plugin_writes {
            out.plugins.push(config.plugin.clone());
            self.put_plugin_config(org, config).await?;
        }
        if let Some(routing) = routing_write {
            self.data
                .store
                .put(
                    Item::json(org_pk(org), ALERT_ROUTE_SK, &routing),
                    Condition::Always,
                )
                .await?;
            out.alert_routing = true;
        }
        for (def, replace) in report_writes {
            if replace {
                reports.remove(&def.id).await?;
                reports.add(&def).await?;
                out.reports_updated.push(def.id);
            } else {
                reports.add(&def).await?;
                out.reports_created.push(def.id);
            }
        }
        Ok(out)
    }
}
