//! Lambda `alert`: EventBridge rules (HealthChanged, SyncFailed, CredentialExpiring, the
//! dead-letter alarm) and a schedule → alert rules, notifications, state in DynamoDB.

use classy_sync_functions::{alert, logging, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services().await?;
    let rules = alert::rules_from_env()?;
    let notifier = alert::notifier(&services)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (services, rules, notifier) = (services.clone(), rules.clone(), notifier.clone());
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        async move {
            alert::handle(&services, notifier, rules, event.payload)
                .await
                .map_err(Error::from)
        }
        .instrument(span)
    }))
    .await
}
