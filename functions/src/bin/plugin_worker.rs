//! Lambda `plugin-worker`: SQS plugin jobs → the engine's plugin push; partial batch
//! failures reported.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use classy_sync_functions::roots::plugin_worker;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&plugin_worker::WIRING);
    logging::init(&env);
    // Clients are created once per container, outside the handler.
    let worker = plugin_worker::init(&env, classy_sync_aws::sdk_config().await)?;
    let worker = &worker;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<plugin_worker::Event>| async move {
            Ok::<SqsBatchResponse, Error>(worker.handle(event.payload).await)
        },
    ))
    .await
}
