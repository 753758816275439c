//! The small traits the engine needs. Adapters (local and AWS) implement them; the engine
//! never sees an SDK.

pub mod budget;
pub mod clock;
pub mod concurrency;
pub mod destination;
pub mod events;
pub mod liveness;
pub mod notifier;
pub mod queue;
pub mod secrets;
pub mod source;
pub mod store;

pub use budget::{BudgetError, RateBudget};
pub use clock::{Clock, ManualClock, SystemClock};
pub use concurrency::{within, ConcurrencyLimit, LimitError, Permit};
pub use destination::{
    ChangeSet, Destination, DestinationContext, DestinationHealth, PluginConfig, PluginError,
    PluginRegistry, PluginSpec, PushReport, SupporterView, Wants,
};
pub use events::{Event, EventBus, EventBusConnector, EventError};
pub use liveness::{ExpiryOnly, HolderLiveness};
pub use notifier::{
    DeliveryReport, DeliveryStatus, Email, MailTransport, Message, MessageKind, Notifier,
    NotifyError, SendError, Severity,
};
pub use queue::{JobQueue, OutMessage, QueueError, QueueStats, Received};
pub use secrets::{SecretError, SecretStore};
pub use source::{
    AppCredentials, ClassySource, Filter, FilterOp, ListQuery, Sort, SourceError, SourcePage,
};
pub use store::{Condition, Item, Page, SkRange, Store, StoreError, WriteOp};
