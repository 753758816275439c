//! Lambda `sync-worker`: SQS sync jobs → the engine; partial batch failures reported.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use classy_sync_functions::{logging, services, worker};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    // Clients are created once per container, outside the handler.
    let services = services::aws_services_with_classy().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let services = services.clone();
        async move {
            let deadline = event.context.deadline();
            Ok::<SqsBatchResponse, Error>(worker::handle(&services, event.payload, deadline).await)
        }
    }))
    .await
}
