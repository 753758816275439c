//! Adapters of the ports on AWS: [`DynamoStore`] (one DynamoDB table), [`SqsQueue`] (an SQS
//! queue and its dead-letter queue), [`SecretsManagerStore`], [`EventBridgeBus`] and
//! [`SesMailer`] (email).
//!
//! They are built from an [`aws_config::SdkConfig`] ([`sdk_config`]) and [`AwsSettings`]
//! (the `CLASSY_SYNC_*` environment). Throttling and 5xx answers are retried by the SDK's
//! standard retry policy; the adapters add the retries the SDK does not do (unprocessed batch
//! items, failed event entries). Errors name the operation, never a secret value.

pub mod config;
pub mod dynamo;
pub mod eventbridge;
pub mod secrets_manager;
pub mod ses;
pub mod sqs;
pub mod sts;

pub use config::{sdk_config, AwsSettings, SettingsError};
pub use dynamo::DynamoStore;
pub use eventbridge::{EventBridgeBus, EventBridgeConnector};
pub use secrets_manager::SecretsManagerStore;
pub use ses::SesMailer;
pub use sqs::SqsQueue;
pub use sts::caller_arn;

use std::time::Duration;

/// Bounded exponential backoff with full jitter for the retries the adapters do themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            base: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0 for the first retry): uniform in
    /// `[0, min(max_delay, base * 2^retry)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        classy_sync_core::retry::Backoff::full(self.base, self.max_delay).delay(retry + 1)
    }
}

/// Describes an SDK error for an error message: the service's code and message, or the
/// transport failure. Never includes request bodies.
pub(crate) fn describe<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                _ => DisplayErrorContext(err).to_string(),
            }
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        for retry in 0..40 {
            let d = p.delay(retry);
            let cap = (10u64 << retry.min(20)).min(100);
            assert!(d <= Duration::from_millis(cap), "retry {retry}: {d:?}");
        }
    }
}
