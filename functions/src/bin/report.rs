//! Lambda `report`: sends the report definitions that are due (EventBridge Scheduler, hourly).

use classy_sync::notify::{NotificationService, NotifySettings};
use classy_sync_functions::{logging, report, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services().await?;
    let sdk = classy_sync::adapters::aws::sdk_config().await;
    let settings = NotifySettings::from_env()
        .map_err(Error::from)?
        .with_ses(&sdk);
    let e = &services.engine;
    let notifier = NotificationService::new(
        e.store.clone(),
        e.secrets.clone(),
        e.clock.clone(),
        settings,
    );
    let notifier = &notifier;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let engine = services.engine.clone();
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        async move {
            report::handle(&engine, notifier, event.payload)
                .await
                .map_err(Error::from)
        }
        .instrument(span)
    }))
    .await
}
