//! Lambda `plugin-worker`: SQS plugin jobs → the engine's plugin push; partial batch
//! failures reported.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use classy_sync_functions::{logging, plugin_worker, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    // Clients are created once per container, outside the handler.
    let services = services::aws_services().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let services = services.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(plugin_worker::handle(&services, event.payload).await)
        }
    }))
    .await
}
