//! [`SecretStore`] on AWS Secrets Manager, with a per-container cache.
//!
//! Names are used as given (`classy-sync/<org>/classy`). Values are `SecretString`s: they are
//! sent as `SecretString` and never appear in logs or error messages (errors carry the
//! operation, the secret's name and Secrets Manager's error code and message only).
//!
//! `delete` removes the secret at once (`ForceDeleteWithoutRecovery`) rather than scheduling
//! it for deletion: a secret in its recovery window blocks `CreateSecret` of the same name,
//! and removing an organization and onboarding it again must work. The credentials are the
//! organization's own (it can issue them again) and the audit log records the deletion.

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use classy_sync_core::ports::{SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Secrets Manager store. Clones share the client but not the cache.
#[derive(Debug)]
pub struct SecretsManagerStore {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (SecretString, Instant)>>,
}

impl SecretsManagerStore {
    /// Values read are cached for `ttl` (zero: no cache). A `put` or `delete` through this
    /// instance updates its cache at once; changes made elsewhere show after at most `ttl`.
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretsManagerStore {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_settings(sdk: &aws_config::SdkConfig, settings: &super::AwsSettings) -> Self {
        SecretsManagerStore::new(Client::new(sdk), settings.secret_ttl)
    }

    fn cached(&self, name: &str) -> Option<SecretString> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    fn remember(&self, name: &str, value: Option<SecretString>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match value {
            Some(v) if !self.ttl.is_zero() => {
                cache.insert(name.to_owned(), (v, Instant::now()));
            }
            _ => {
                cache.remove(name);
            }
        }
    }
}

fn service_code<E, R>(e: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// Secrets Manager answers `ResourceNotFoundException` for an unknown secret and
/// `InvalidRequestException` for one scheduled for deletion: both are gone.
fn is_gone<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match service_code(e) {
        Some("ResourceNotFoundException") => true,
        Some("InvalidRequestException") => deleted_message(e),
        _ => false,
    }
}

fn deleted_message<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match e {
        SdkError::ServiceError(s) => s
            .err()
            .message()
            .is_some_and(|m| m.contains("marked for deletion") || m.contains("deleted")),
        _ => false,
    }
}

fn unavailable<E, R>(op: &str, name: &str, e: &SdkError<E, R>) -> SecretError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    SecretError::Unavailable(format!(
        "Secrets Manager {op} {name}: {}",
        super::describe(e)
    ))
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if let Some(v) = self.cached(name) {
            return Ok(v);
        }
        let out = match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => out,
            Err(e) if is_gone(&e) => {
                self.remember(name, None);
                return Err(SecretError::NotFound(name.to_owned()));
            }
            Err(e) => return Err(unavailable("GetSecretValue", name, &e)),
        };
        let value = match out.secret_string() {
            Some(s) => SecretString::from(s.to_owned()),
            None => {
                return Err(SecretError::Corrupt(format!(
                    "secret {name} has no string value"
                )))
            }
        };
        self.remember(name, Some(value.clone()));
        Ok(value)
    }

    /// Drops the cached value first: a warm container whose cached credential was refused
    /// reads the rotated one at once, not after the cache's TTL.
    async fn get_fresh(&self, name: &str) -> Result<SecretString, SecretError> {
        self.remember(name, None);
        self.get(name).await
    }

    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if service_code(&e) == Some("ResourceExistsException") => {
                self.client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| unavailable("PutSecretValue", name, &e))?;
            }
            Err(e) => return Err(unavailable("CreateSecret", name, &e)),
        }
        self.remember(name, Some(value));
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.remember(name, None);
        // A forced delete of an unknown name succeeds in Secrets Manager; the port wants
        // NotFound, so look first.
        match self.client.describe_secret().secret_id(name).send().await {
            Ok(d) if d.deleted_date().is_none() => {}
            Ok(_) => return Err(SecretError::NotFound(name.to_owned())),
            Err(e) if is_gone(&e) => return Err(SecretError::NotFound(name.to_owned())),
            Err(e) => return Err(unavailable("DescribeSecret", name, &e)),
        }
        match self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_gone(&e) => Err(SecretError::NotFound(name.to_owned())),
            Err(e) => Err(unavailable("DeleteSecret", name, &e)),
        }
    }
}
