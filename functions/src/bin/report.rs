//! Lambda `report`: sends the report definitions that are due (EventBridge Scheduler, hourly).

use classy_sync_functions::roots::report;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&report::WIRING);
    logging::init(&env);
    let function = report::init(&env, classy_sync_aws::sdk_config().await)?;
    let function = &function;
    lambda_runtime::run(service_fn(|event: LambdaEvent<report::Event>| async move {
        function.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
