//! The composition root of each Lambda function, in one place per function: its
//! [`FunctionWiring`] (environment, AWS access, typed event) and `init`, which builds what
//! the handler needs by reading the environment only through that declaration. The
//! binaries call `init` with the process environment and Lambda's SDK configuration; the
//! tests call it with the environment of the transformed template and moto's.

use crate::wiring::{
    optional, required, Access, Env, FunctionWiring, Resource, AWS_ROOT, CLASSY, FUNCTION_SETTINGS,
    LOGGING, NOTIFY,
};
use crate::Services;

const fn access(actions: &'static [&'static str], resource: Resource) -> Access {
    Access { actions, resource }
}

/// Every function the stack deploys.
pub const ALL: &[&FunctionWiring] = &[
    &dispatch::WIRING,
    &sync_worker::WIRING,
    &plugin_worker::WIRING,
    &health_check::WIRING,
    &alert::WIRING,
    &report::WIRING,
    &webhook::WIRING,
];

/// The access every function that publishes domain events needs.
const PUBLISH_EVENTS: Access = access(&["events:PutEvents"], Resource::EventBus);
/// Sending email through SES v2 as the configured sender.
const SEND_EMAIL: Access = access(&["ses:SendEmail"], Resource::EmailIdentity);
/// Reading a notification channel's webhook URL or signing secret.
const CHANNEL_SECRETS: Access = access(&["secretsmanager:GetSecretValue"], Resource::ChannelSecret);
/// Reading an organization's Classy credential.
const CLASSY_SECRETS: Access = access(&["secretsmanager:GetSecretValue"], Resource::ClassySecret);

/// The services without Classy and the plugin queue (dispatch sends to it, plugin-worker
/// sends busy jobs back to it); every read of the environment checked.
fn services_with_plugin_queue(
    env: &Env,
    sdk: aws_config::SdkConfig,
) -> anyhow::Result<(Services, std::sync::Arc<classy_sync_aws::SqsQueue>)> {
    let services = crate::services::aws_services(env, sdk)?;
    let plugin_queue = crate::plugin_dispatch::plugin_queue_from(env.lookup(), &services.root.sdk);
    env.finish()?;
    Ok((services, std::sync::Arc::new(plugin_queue?)))
}

fn sqs_event<J>(
    event: serde_json::Value,
    parse: impl Fn(&str) -> Result<J, classy_sync_core::engine::EngineError>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event)?;
    anyhow::ensure!(!event.records.is_empty(), "an SQS event without records");
    for r in &event.records {
        parse(r.body.as_deref().context("an SQS message without a body")?)?;
    }
    Ok(())
}

/// `dispatch`: the schedules' input → sync jobs or plugin jobs.
pub mod dispatch {
    use super::*;
    use crate::events::{DispatchEvent, DispatchRequest};
    use crate::plugin_dispatch::{self, ENV_PLUGIN_QUEUE_URL};
    use classy_sync_aws::SqsQueue;
    use serde_json::Value;
    use std::sync::Arc;

    pub type Event = DispatchEvent;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "dispatch",
        env: &[
            AWS_ROOT,
            FUNCTION_SETTINGS,
            LOGGING,
            &[required(ENV_PLUGIN_QUEUE_URL)],
        ],
        access: &[
            access(
                &[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                ],
                Resource::Table,
            ),
            access(&["sqs:SendMessage"], Resource::SyncQueue),
            access(&["sqs:SendMessage"], Resource::PluginQueue),
        ],
        accepts,
    };

    fn accepts(event: Value) -> anyhow::Result<()> {
        serde_json::from_value::<Event>(event)?.request()?;
        Ok(())
    }

    #[derive(Clone)]
    pub struct Dispatch {
        pub services: Services,
        pub plugin_queue: Arc<SqsQueue>,
    }

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Dispatch> {
        let (services, plugin_queue) = services_with_plugin_queue(env, sdk)?;
        Ok(Dispatch {
            services,
            plugin_queue,
        })
    }

    impl Dispatch {
        pub async fn handle(&self, event: Event) -> anyhow::Result<Value> {
            match event.request()? {
                DispatchRequest::Plugins => {
                    plugin_dispatch::handle(&self.services, self.plugin_queue.as_ref()).await
                }
                DispatchRequest::Entity(entity) => {
                    crate::dispatch::handle(&self.services, entity).await
                }
                DispatchRequest::Sync { org, entity, full } => {
                    crate::dispatch::handle_requested(&self.services, org, entity, full).await
                }
            }
        }
    }
}

/// `sync-worker`: sync jobs from the sync queue.
pub mod sync_worker {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use classy_sync_core::engine::jobs::SyncJob;

    pub type Event = SqsEvent;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "sync-worker",
        env: &[AWS_ROOT, FUNCTION_SETTINGS, LOGGING, CLASSY],
        access: &[
            access(
                &[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    // The QUEUED#/RERUN# markers when a job ends or starts.
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                ],
                Resource::Table,
            ),
            access(&["sqs:SendMessage"], Resource::SyncQueue),
            CLASSY_SECRETS,
            PUBLISH_EVENTS,
        ],
        accepts: |event| sqs_event(event, SyncJob::parse),
    };

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Services> {
        let services = crate::services::aws_services_with_classy(env, sdk)?;
        env.finish()?;
        Ok(services)
    }
}

/// `plugin-worker`: plugin jobs from the plugin queue.
pub mod plugin_worker {
    use super::*;
    use crate::plugin_dispatch::ENV_PLUGIN_QUEUE_URL;
    use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
    use classy_sync_aws::SqsQueue;
    use classy_sync_core::engine::plugin_jobs::PluginJob;
    use std::sync::Arc;

    pub type Event = SqsEvent;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "plugin-worker",
        env: &[
            AWS_ROOT,
            FUNCTION_SETTINGS,
            LOGGING,
            &[required(ENV_PLUGIN_QUEUE_URL)],
        ],
        access: &[
            access(
                &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
                Resource::Table,
            ),
            access(&["secretsmanager:GetSecretValue"], Resource::PluginSecret),
            // A job whose plugin is busy goes back on the plugin queue with a delay.
            access(&["sqs:SendMessage"], Resource::PluginQueue),
        ],
        accepts: |event| sqs_event(event, PluginJob::parse),
    };

    #[derive(Clone)]
    pub struct PluginWorker {
        pub services: Services,
        pub plugin_queue: Arc<SqsQueue>,
    }

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<PluginWorker> {
        let (services, plugin_queue) = services_with_plugin_queue(env, sdk)?;
        Ok(PluginWorker {
            services,
            plugin_queue,
        })
    }

    impl PluginWorker {
        pub async fn handle(&self, event: Event) -> SqsBatchResponse {
            crate::plugin_worker::handle(&self.services, self.plugin_queue.as_ref(), event).await
        }
    }
}

/// `health-check`: the 5-minute schedule.
pub mod health_check {
    use super::*;
    use serde::de::IgnoredAny;

    /// The schedule's event carries nothing the check needs.
    pub type Event = IgnoredAny;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "health-check",
        env: &[AWS_ROOT, FUNCTION_SETTINGS, LOGGING, CLASSY],
        access: &[
            access(
                &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
                Resource::Table,
            ),
            access(&["sqs:GetQueueAttributes"], Resource::SyncQueue),
            access(&["sqs:GetQueueAttributes"], Resource::SyncDeadLetterQueue),
            CLASSY_SECRETS,
            PUBLISH_EVENTS,
        ],
        accepts: crate::wiring::accepts::<Event>,
    };

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Services> {
        let services = crate::services::aws_services_with_classy(env, sdk)?;
        env.finish()?;
        Ok(services)
    }
}

/// `alert`: health, sync and credential events, the dead-letter alarm and a schedule.
pub mod alert {
    use super::*;
    use crate::events::AlertTrigger;
    use classy_sync_core::domain::alerts::Rule;
    use classy_sync_core::ports::Notifier;
    use serde_json::Value;
    use std::sync::Arc;

    pub type Event = AlertTrigger;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "alert",
        env: &[
            AWS_ROOT,
            FUNCTION_SETTINGS,
            LOGGING,
            NOTIFY,
            &[optional(crate::alert::ENV_ALERT_RULES)],
        ],
        // No Classy: the Classy and destination results come from the recorded health report.
        access: &[
            access(
                &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
                Resource::Table,
            ),
            access(&["sqs:GetQueueAttributes"], Resource::SyncQueue),
            access(&["sqs:GetQueueAttributes"], Resource::SyncDeadLetterQueue),
            PUBLISH_EVENTS,
            CHANNEL_SECRETS,
            SEND_EMAIL,
        ],
        accepts: crate::wiring::accepts::<Event>,
    };

    #[derive(Clone)]
    pub struct Alert {
        pub services: Services,
        pub notifier: Arc<dyn Notifier>,
        pub rules: Vec<Rule>,
    }

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Alert> {
        let services = crate::services::aws_services(env, sdk)?;
        let rules = crate::alert::rules_from(env.lookup())?;
        let notifier: Arc<dyn Notifier> = Arc::new(services.root.notifier_from(env.lookup())?);
        env.finish()?;
        Ok(Alert {
            services,
            notifier,
            rules,
        })
    }

    impl Alert {
        pub async fn handle(&self, event: Event) -> anyhow::Result<Value> {
            crate::alert::handle(
                &self.services,
                self.notifier.clone(),
                self.rules.clone(),
                event,
            )
            .await
        }
    }
}

/// `report`: the report schedule, or one definition by id.
pub mod report {
    use super::*;
    use crate::events::ReportEvent;
    use classy_sync_core::engine::ReportService;
    use serde_json::Value;
    use std::sync::Arc;

    /// `null` (a bare invocation) means every due definition, as `{}` does.
    pub type Event = Option<ReportEvent>;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "report",
        env: &[AWS_ROOT, FUNCTION_SETTINGS, LOGGING, NOTIFY],
        access: &[
            access(
                &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
                Resource::Table,
            ),
            CHANNEL_SECRETS,
            SEND_EMAIL,
        ],
        accepts: crate::wiring::accepts::<Event>,
    };

    /// Reports read the store and send through the notification service: no Classy client.
    #[derive(Clone)]
    pub struct Report {
        pub services: Services,
        pub reports: Arc<ReportService>,
    }

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Report> {
        let services = crate::services::aws_services(env, sdk)?;
        let reports = Arc::new(services.root.reports_from(env.lookup())?);
        env.finish()?;
        Ok(Report { services, reports })
    }

    impl Report {
        pub async fn handle(&self, event: Event) -> anyhow::Result<Value> {
            crate::report::handle(&self.reports, event.unwrap_or_default()).await
        }
    }
}

/// `webhook`: Classy (Svix) webhooks from the Function URL → coalesced sync jobs.
pub mod webhook {
    use super::*;
    use aws_lambda_events::event::lambda_function_urls::{
        LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
    };
    use classy_sync_core::engine::webhooks::{WebhookOptions, WebhookReceiver};
    use serde_json::Value;

    pub type Event = LambdaFunctionUrlRequest;

    pub const WIRING: FunctionWiring = FunctionWiring {
        binary: "webhook",
        env: &[AWS_ROOT, FUNCTION_SETTINGS, LOGGING],
        access: &[
            access(
                &[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                ],
                Resource::Table,
            ),
            access(&["sqs:SendMessage"], Resource::SyncQueue),
            access(&["secretsmanager:GetSecretValue"], Resource::WebhookSecret),
        ],
        accepts,
    };

    fn accepts(event: Value) -> anyhow::Result<()> {
        let request: Event = serde_json::from_value(event)?;
        let path = request.raw_path.as_deref().unwrap_or("");
        anyhow::ensure!(
            crate::webhook::org_from_path(path).is_some(),
            "not a /webhooks/classy/{{organization_id}} request: {path}"
        );
        Ok(())
    }

    #[derive(Clone)]
    pub struct Webhook {
        pub receiver: WebhookReceiver,
    }

    pub fn init(env: &Env, sdk: aws_config::SdkConfig) -> anyhow::Result<Webhook> {
        let services = crate::services::aws_services(env, sdk)?;
        env.finish()?;
        let mut receiver = WebhookReceiver::new(
            services.data.clone(),
            services.root.secrets.clone(),
            services.queue.clone(),
        );
        receiver.options = WebhookOptions {
            marker_ttl: services.settings.marker_ttl,
            ..WebhookOptions::default()
        };
        Ok(Webhook { receiver })
    }

    impl Webhook {
        pub async fn handle(&self, event: Event) -> LambdaFunctionUrlResponse {
            crate::webhook::handle(&self.receiver, event).await
        }
    }
}
