//! Lambda `alert`: EventBridge rules (HealthChanged, SyncFailed, CredentialExpiring, the
//! dead-letter alarm) and a schedule → alert rules, notifications, state in DynamoDB.

use classy_sync_functions::events::AlertTrigger;
use classy_sync_functions::{alert, logging, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services_with_classy().await?;
    let rules = alert::rules_from_env()?;
    let notifier = alert::notifier(&services)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<AlertTrigger>| {
        let (services, rules, notifier) = (services.clone(), rules.clone(), notifier.clone());
        async move {
            alert::handle(&services, notifier, rules, event.payload)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
