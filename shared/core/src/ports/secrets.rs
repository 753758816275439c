//! Credentials by name (`classy-sync/<org>/<service>`). Values are `SecretString` so they
//! cannot be printed by accident.

use async_trait::async_trait;
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    #[error("secret store is corrupt: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError>;
    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError>;
    async fn delete(&self, name: &str) -> Result<(), SecretError>;
}
