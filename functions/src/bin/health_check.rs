//! Lambda `health-check`: scheduled every 5 minutes; `HealthChanged` on transitions.

use classy_sync_functions::{health_check, logging, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let services = services.clone();
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        async move { health_check::handle(&services).await.map_err(Error::from) }.instrument(span)
    }))
    .await
}
