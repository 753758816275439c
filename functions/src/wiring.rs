//! The wiring contract: what each Lambda function needs from the stack that deploys it.
//!
//! Every function declares, in its composition root ([`crate::roots`]), a [`FunctionWiring`]:
//! the environment variables it reads (and which of them the deployed stack must set), the
//! AWS actions it calls on which resources, and how its handler parses an event. The root
//! reads its environment only through an [`Env`] over that declaration: a variable read but
//! not declared, or declared required but not set, stops the cold start with an error naming
//! it, so the declaration cannot drift from the reads. `tests/tests/wiring_contract.rs` holds
//! `infra/template.yaml` (transformed by the SAM translator) to these declarations.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Whether the deployed stack must set a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The stack must set it: the function fails without it, or its default is wrong for a
    /// deployed stack (the event bus, the Classy rate limit per instance).
    Required,
    /// Read when set; a default applies otherwise.
    Optional,
}

/// One environment variable a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    pub need: Need,
}

pub const fn required(name: &'static str) -> EnvVar {
    EnvVar {
        name,
        need: Need::Required,
    }
}

pub const fn optional(name: &'static str) -> EnvVar {
    EnvVar {
        name,
        need: Need::Optional,
    }
}

/// A resource of the stack a function calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The table (`CLASSY_SYNC_TABLE`).
    Table,
    /// The sync-job queue (`CLASSY_SYNC_QUEUE_URL`).
    SyncQueue,
    /// Its dead-letter queue (`CLASSY_SYNC_DLQ_URL`).
    SyncDeadLetterQueue,
    /// The plugin-job queue (`CLASSY_SYNC_PLUGIN_QUEUE_URL`).
    PluginQueue,
    /// The classy-sync event bus (`CLASSY_SYNC_EVENT_BUS`).
    EventBus,
    /// An organization's Classy credential, `classy-sync/<org>/classy`.
    ClassySecret,
    /// An organization's plugin credential, `classy-sync/<org>/<plugin>`.
    PluginSecret,
    /// A notification channel's secret, `classy-sync/_channels/<name>`.
    ChannelSecret,
    /// An organization's webhook signing secret, `classy-sync/<org>/webhook`.
    WebhookSecret,
    /// The SES identity of the sender address (`CLASSY_SYNC_EMAIL_FROM`).
    EmailIdentity,
}

/// AWS actions a function calls on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub actions: &'static [&'static str],
    pub resource: Resource,
}

/// What one function needs from the stack.
#[derive(Debug, Clone, Copy)]
pub struct FunctionWiring {
    /// The binary (`BuildProperties.Binary` in the template).
    pub binary: &'static str,
    /// Groups of variables (one per component the root builds).
    pub env: &'static [&'static [EnvVar]],
    pub access: &'static [Access],
    /// Parses an event as the handler's typed event does (and what it carries, such as the
    /// job in each SQS message); `Err` says why it would be refused.
    pub accepts: fn(serde_json::Value) -> anyhow::Result<()>,
}

impl FunctionWiring {
    pub fn vars(&self) -> impl Iterator<Item = &'static EnvVar> {
        self.env.iter().flat_map(|group| group.iter())
    }

    pub fn declares(&self, name: &str) -> bool {
        self.vars().any(|v| v.name == name)
    }

    pub fn required(&self) -> impl Iterator<Item = &'static str> {
        self.vars()
            .filter(|v| v.need == Need::Required)
            .map(|v| v.name)
    }
}

/// The AWS root: table, queues, bus, secrets (`classy_sync_aws::AwsSettings`).
pub const AWS_ROOT: &[EnvVar] = &[
    required(classy_sync_aws::config::ENV_TABLE),
    required(classy_sync_aws::config::ENV_QUEUE_URL),
    required(classy_sync_aws::config::ENV_DLQ_URL),
    required(classy_sync_aws::config::ENV_EVENT_BUS),
    optional(classy_sync_aws::config::ENV_SECRET_PREFIX),
    optional(classy_sync_aws::config::ENV_SECRET_TTL_SECS),
];

/// [`crate::services::FunctionSettings`].
pub const FUNCTION_SETTINGS: &[EnvVar] = &[
    optional(crate::services::ENV_DEADLINE_MARGIN_SECS),
    optional(crate::services::ENV_MARKER_TTL_SECS),
    optional(crate::metrics::ENV_METRICS_PER_ORGANIZATION),
];

/// The log filter ([`crate::logging::init`]).
pub const LOGGING: &[EnvVar] = &[optional(crate::logging::ENV_RUST_LOG)];

/// The Classy client (`classy_sync_classy::ClassyConfig`). The limiter is per instance, so
/// the stack must divide Classy's limit among the instances.
pub const CLASSY: &[EnvVar] = &[
    optional(classy_sync_classy::config::ENV_API_BASE_URL),
    optional(classy_sync_classy::config::ENV_AUTH_URL),
    required(classy_sync_classy::config::ENV_RATE_LIMIT_PER_MINUTE),
    optional(classy_sync_classy::config::ENV_TIMEOUT_SECS),
    optional(classy_sync_classy::config::ENV_MAX_RETRIES),
    optional(classy_sync_classy::config::ENV_RETRY_BASE_MS),
    // Development only (the sandbox over http); unset on a deployed stack.
    optional(classy_sync_classy::ENV_ALLOW_DEV_URLS),
];

/// The notification service (`classy_sync_notify::NotifySettings`): without a sender address
/// every email delivery fails.
pub const NOTIFY: &[EnvVar] = &[
    required(classy_sync_notify::ENV_EMAIL_FROM),
    optional(classy_sync_notify::ENV_URL_ALLOW),
    // Development only (channels with allow_http_loopback); unset on a deployed stack.
    optional(classy_sync_notify::ENV_ALLOW_DEV_URLS),
];

/// Where an [`Env`] takes values from.
type Source = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A function's environment, read only through its declaration.
pub struct Env {
    wiring: &'static FunctionWiring,
    source: Source,
    read: Mutex<BTreeSet<String>>,
    undeclared: Mutex<BTreeSet<String>>,
}

impl Env {
    /// The process environment (what Lambda gives the function).
    pub fn process(wiring: &'static FunctionWiring) -> Env {
        Env::from_lookup(wiring, |n| std::env::var(n).ok())
    }

    /// Variables from `source` (tests: the environment of the transformed template).
    pub fn from_lookup(
        wiring: &'static FunctionWiring,
        source: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Env {
        Env {
            wiring,
            source: Box::new(source),
            read: Mutex::default(),
            undeclared: Mutex::default(),
        }
    }

    pub fn wiring(&self) -> &'static FunctionWiring {
        self.wiring
    }

    /// The variable's value (blank counts as absent); `None` for a variable the function
    /// does not declare (remembered: [`Env::finish`] reports it).
    pub fn var(&self, name: &str) -> Option<String> {
        self.read.lock().unwrap().insert(name.to_owned());
        if !self.wiring.declares(name) {
            self.undeclared.lock().unwrap().insert(name.to_owned());
            return None;
        }
        (self.source)(name).filter(|v| !v.trim().is_empty())
    }

    /// [`Env::var`] as the lookup the settings readers take.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| self.var(name)
    }

    /// Every name read so far.
    pub fn read(&self) -> BTreeSet<String> {
        self.read.lock().unwrap().clone()
    }

    /// After the root is built: an error naming each variable read but not declared and
    /// each required variable that is not set.
    pub fn finish(&self) -> anyhow::Result<()> {
        let undeclared = self.undeclared.lock().unwrap().clone();
        let missing: Vec<&str> = self
            .wiring
            .required()
            .filter(|n| (self.source)(n).is_none_or(|v| v.trim().is_empty()))
            .collect();
        let mut problems = Vec::new();
        if !undeclared.is_empty() {
            problems.push(format!(
                "reads {} not declared in its wiring",
                undeclared.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        if !missing.is_empty() {
            problems.push(format!(
                "needs {} but the environment does not set it",
                missing.join(", ")
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}: {}", self.wiring.binary, problems.join("; "))
        }
    }
}

/// An event that deserializes into `T`.
pub fn accepts<T: serde::de::DeserializeOwned>(event: serde_json::Value) -> anyhow::Result<()> {
    serde_json::from_value::<T>(event)?;
    Ok(())
}
