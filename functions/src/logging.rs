//! Structured JSON logs on stdout (CloudWatch Logs). Every line carries its spans: the
//! runtime's own `Lambda runtime invoke` span (`requestId`, `xrayTraceId`) and the job's
//! (`org`, `entity`). `RUST_LOG` filters (default `info`).

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .init();
}
