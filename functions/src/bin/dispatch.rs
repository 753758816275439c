//! Lambda `dispatch`: per-entity schedule → one sync job per due organization; the hourly
//! plugin schedule (`{"plugins": true}`) → one plugin job per due organization×plugin.

use classy_sync_functions::roots::dispatch;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&dispatch::WIRING);
    logging::init(&env);
    // Clients are created once per container, outside the handler.
    let function = dispatch::init(&env, classy_sync_aws::sdk_config().await)?;
    let function = &function;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<dispatch::Event>| async move {
            function.handle(event.payload).await.map_err(Error::from)
        },
    ))
    .await
}
