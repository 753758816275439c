//! Fundraising analytics as pure folds over records and aggregates: `now`, the period and
//! the thresholds are parameters; the engine streams the store into them.

pub mod campaigns;
pub mod donors;
pub mod fep;
pub mod journey;
pub mod period;
pub mod recurring;
pub mod rfm;
pub mod rollup;
pub mod summary;
pub mod trends;

pub use campaigns::CampaignStats;
pub use donors::{AnalyticsConfig, DonorFold, DonorReport, Gift, TierThresholds};
pub use fep::{FepOptions, FepReport};
pub use period::{Period, Window};
pub use summary::{OrgSummary, PeriodInfo};
