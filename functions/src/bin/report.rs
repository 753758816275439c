//! Lambda `report`: sends the report definitions that are due (EventBridge Scheduler, hourly).

use classy_sync_functions::events::ReportEvent;
use classy_sync_functions::{logging, report, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let services = services::aws_services().await?;
    // Reports read the store and send through the notification service: no Classy client.
    let reports = services.root.reports()?;
    let reports = &reports;
    // `null` (a bare invocation) means every due definition, as `{}` does.
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<Option<ReportEvent>>| async move {
            report::handle(reports, event.payload.unwrap_or_default())
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
