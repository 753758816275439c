//! Who the AWS caller is: STS `GetCallerIdentity` (needs no permission), used as the actor
//! of audit entries written with `--backend aws`.

use aws_sdk_sts::Client;

#[derive(Debug, thiserror::Error)]
#[error("sts GetCallerIdentity: {0}")]
pub struct CallerError(String);

/// The caller's ARN (`arn:aws:iam::<account>:user/<name>`, an assumed role's session ARN,
/// ...), from the shared SDK configuration (which honours `AWS_ENDPOINT_URL`).
pub async fn caller_arn(sdk: &aws_config::SdkConfig) -> Result<String, CallerError> {
    let out = Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| CallerError(crate::describe(&e)))?;
    out.arn
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CallerError("the answer names no ARN".into()))
}
