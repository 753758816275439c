//! Data quality as pure rules: validation per record, duplicate keys and grouping, and the
//! 0–100 score. Nothing here (or in the engine's quality pass) changes a record.

pub mod duplicates;
pub mod facts;
pub mod rules;
pub mod score;

pub use duplicates::{DuplicateGroup, DuplicateKind};
pub use rules::{Finding, Rule};
pub use score::{QualityScore, RuleCost};
