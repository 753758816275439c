//! Lambda `dispatch`: per-entity schedule → one sync job per due organization.

use classy_sync_functions::{dispatch, logging, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    // Clients are created once per container, outside the handler.
    let services = services::aws_services().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let services = services.clone();
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        async move {
            dispatch::handle(&services, event.payload)
                .await
                .map_err(Error::from)
        }
        .instrument(span)
    }))
    .await
}
