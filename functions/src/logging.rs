//! Structured JSON logs on stdout (CloudWatch Logs). Every line carries its spans: the
//! runtime's own `Lambda runtime invoke` span (`requestId`, `xrayTraceId`) and the job's
//! (`org`, `entity`). `RUST_LOG` filters (default `info`).

/// The log filter's variable.
pub const ENV_RUST_LOG: &str = "RUST_LOG";

/// The filter from `RUST_LOG`, read through the function's declared environment (`info`
/// when unset or not a filter).
pub fn filter(env: &crate::wiring::Env) -> tracing_subscriber::EnvFilter {
    env.var(ENV_RUST_LOG)
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"))
}

/// Installs the JSON logger with [`filter`]; each binary calls it first, before its root.
pub fn init(env: &crate::wiring::Env) {
    let filter = filter(env);
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .init();
}
