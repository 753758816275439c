//! Lambda `health-check`: scheduled every 5 minutes; `HealthChanged` on transitions.

use classy_sync_functions::roots::health_check;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&health_check::WIRING);
    logging::init(&env);
    let services = health_check::init(&env, classy_sync_aws::sdk_config().await)?;
    let services = &services;
    lambda_runtime::run(service_fn(
        |_: LambdaEvent<health_check::Event>| async move {
            classy_sync_functions::health_check::handle(services)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
