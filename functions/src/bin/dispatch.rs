//! Lambda `dispatch`: per-entity schedule → one sync job per due organization; the hourly
//! plugin schedule (`{"plugins": true}`) → one plugin job per due organization×plugin.

use classy_sync_functions::events::{DispatchEvent, DispatchRequest};
use classy_sync_functions::{dispatch, logging, plugin_dispatch, services};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    // Clients are created once per container, outside the handler.
    let services = services::aws_services().await?;
    // Absent when plugins are not deployed: only the plugin schedule needs it.
    let plugin_queue = plugin_dispatch::plugin_queue_from_env(&services.root.sdk)
        .ok()
        .map(Arc::new);
    lambda_runtime::run(service_fn(|event: LambdaEvent<DispatchEvent>| {
        let services = services.clone();
        let plugin_queue = plugin_queue.clone();
        async move {
            match event.payload.request()? {
                DispatchRequest::Plugins => {
                    let queue = plugin_queue.ok_or_else(|| {
                        Error::from(format!(
                            "{} is not set: cannot dispatch plugin jobs",
                            plugin_dispatch::ENV_PLUGIN_QUEUE_URL
                        ))
                    })?;
                    plugin_dispatch::handle(&services, queue.as_ref()).await
                }
                DispatchRequest::Entity(entity) => dispatch::handle(&services, entity).await,
            }
            .map_err(Error::from)
        }
    }))
    .await
}
