//! Email through Amazon SES v2 (`SendEmail` with Raw content: the whole MIME message the
//! notifier built, so inline images such as the report chart's PNG travel with it; needs
//! `ses:SendRawEmail`). Built from the shared SDK configuration, which honours
//! `AWS_ENDPOINT_URL` (moto).

use async_trait::async_trait;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;
use classy_sync_core::ports::{Email, MailTransport, SendError};

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        SesMailer {
            client: Client::new(sdk),
        }
    }

    /// Sends one email; returns SES's message id.
    pub async fn send_email(&self, mail: &Email) -> Result<String, SendError> {
        let raw = RawMessage::builder()
            .data(Blob::new(mail.raw.clone()))
            .build()
            .map_err(|e| SendError::permanent(format!("SES message: {e}")))?;
        let out = self
            .client
            .send_email()
            .from_email_address(&mail.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(mail.to.clone()))
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| {
                let (code, permanent) = match &e {
                    SdkError::ServiceError(s) => {
                        let code = s.err().code().unwrap_or("unknown").to_owned();
                        // Throttling and 5xx are worth retrying; a rejected message is not.
                        let transient = code.contains("Throttl")
                            || code.contains("TooManyRequests")
                            || s.raw().status().is_server_error();
                        let msg = s.err().message().unwrap_or("").to_owned();
                        (format!("{code}: {msg}"), !transient)
                    }
                    other => (
                        aws_sdk_sesv2::error::DisplayErrorContext(other).to_string(),
                        false,
                    ),
                };
                SendError {
                    reason: format!("SES SendEmail: {code}"),
                    retry_after: None,
                    permanent,
                }
            })?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

#[async_trait]
impl MailTransport for SesMailer {
    async fn send(&self, email: &Email, _password: Option<&str>) -> Result<(), SendError> {
        self.send_email(email).await.map(|_| ())
    }
}
