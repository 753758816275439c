//! Scheduled reports, pure part: the definition (sections, period, cron + time zone,
//! recipients) and the renderers of analytics summaries as an HTML email (with an inline SVG
//! chart), its text part, and Slack Block Kit. Figures come from `OrgSummary` and, for the
//! `fep` section, `FepReport`.

pub mod chart;
pub mod definition;
pub mod figures;
pub mod format;
pub mod html;
pub mod slack;
pub mod text;

pub use definition::{
    preset, DefinitionError, Preset, Recipients, ReportDefinition, ReportScope, Section, PRESETS,
};

use crate::domain::analytics::fep::FepReport;
use crate::domain::analytics::OrgSummary;

/// What one rendering shows: a title, the sections in order, one summary per organization.
#[derive(Debug, Clone)]
pub struct ReportView<'a> {
    pub title: String,
    pub sections: &'a [Section],
    pub summaries: &'a [OrgSummary],
    /// The FEP figures of the organizations (the `fep` section), by `org_id`.
    pub fep: &'a [FepReport],
    /// Unix seconds the report was generated at.
    pub generated_at: i64,
}

impl ReportView<'_> {
    pub fn has(&self, s: Section) -> bool {
        self.sections.contains(&s)
    }

    /// The FEP figures of organization `org`, if computed.
    pub fn fep_of(&self, org: u64) -> Option<&FepReport> {
        self.fep.iter().find(|f| f.org_id == org)
    }
}

#[cfg(test)]
mod tests;
