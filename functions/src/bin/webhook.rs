//! Lambda `webhook`: Classy (GoFundMe Pro) webhooks at the function's URL,
//! `POST /webhooks/classy/{organization_id}` → verified, deduped, coalesced sync jobs.

use classy_sync_functions::roots::webhook;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&webhook::WIRING);
    logging::init(&env);
    // Clients are created once per container, outside the handler.
    let function = webhook::init(&env, classy_sync_aws::sdk_config().await)?;
    let function = &function;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<webhook::Event>| async move {
            Ok::<_, Error>(function.handle(event.payload).await)
        },
    ))
    .await
}
