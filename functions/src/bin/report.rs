//! Lambda `report`: sends the report definitions that are due (EventBridge Scheduler, hourly).

use classy_sync_functions::{logging, report, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services().await?;
    let notifier = services.root.notifier()?;
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
