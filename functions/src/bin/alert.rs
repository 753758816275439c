//! Lambda `alert`: EventBridge rules (HealthChanged, SyncFailed, CredentialExpiring, the
//! dead-letter alarm) and a schedule → alert rules, notifications, state in DynamoDB.

use classy_sync_functions::roots::alert;
use classy_sync_functions::{logging, wiring::Env};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::process(&alert::WIRING);
    logging::init(&env);
    // Clients are created once per container, outside the handler.
    let function = alert::init(&env, classy_sync_aws::sdk_config().await)?;
    let function = &function;
    lambda_runtime::run(service_fn(|event: LambdaEvent<alert::Event>| async move {
        function.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
