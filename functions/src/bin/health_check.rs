//! Lambda `health-check`: scheduled every 5 minutes; `HealthChanged` on transitions.

use classy_sync_functions::{health_check, logging, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::de::IgnoredAny;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services_with_classy().await?;
    // The schedule's event carries nothing the check needs.
    lambda_runtime::run(service_fn(|_: LambdaEvent<IgnoredAny>| {
        let services = services.clone();
        async move { health_check::handle(&services).await.map_err(Error::from) }
    }))
    .await
}
