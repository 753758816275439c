//! Email through Amazon SES v2 (`SendEmail` with Raw content, so the multipart/alternative
//! message is the same one SMTP would send). Built from the shared SDK configuration, which
//! honours `AWS_ENDPOINT_URL` (moto).

use super::SendError;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;

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

    /// Sends one MIME message from `from` to `to`; returns SES's message id.
    pub async fn send(
        &self,
        from: &str,
        to: &[String],
        mail: &lettre::Message,
    ) -> Result<String, SendError> {
        let raw = RawMessage::builder()
            .data(Blob::new(mail.formatted()))
            .build()
            .map_err(|e| SendError {
                reason: format!("SES raw message: {e}"),
                retry_after: None,
                permanent: true,
            })?;
        let out = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
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
