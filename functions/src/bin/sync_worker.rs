//! Lambda `sync-worker`: SQS sync jobs → the engine; partial batch failures reported.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use classy_sync_functions::roots::sync_worker;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&sync_worker::WIRING);
    logging::init(&env);
    // Clients are created once per container, outside the handler.
    let services = sync_worker::init(&env, classy_sync_aws::sdk_config().await)?;
    let services = &services;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<sync_worker::Event>| async move {
            let deadline = event.context.deadline();
            Ok::<SqsBatchResponse, Error>(
                classy_sync_functions::worker::handle(services, event.payload, deadline).await,
            )
        },
    ))
    .await
}
