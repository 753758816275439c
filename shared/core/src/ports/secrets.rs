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

    /// Reads a secret past any cache: after the value was refused, a rotation elsewhere may
    /// have replaced it. Stores without a cache read as `get` does.
    async fn get_fresh(&self, name: &str) -> Result<SecretString, SecretError> {
        self.get(name).await
    }

    /// Writes many secrets. Not atomic: on an error some may be written (the caller undoes
    /// what it must). Stores where one write is costly (a file rewritten whole) batch them.
    async fn put_many(&self, secrets: Vec<(String, SecretString)>) -> Result<(), SecretError> {
        for (name, value) in secrets {
            self.put(&name, value).await?;
        }
        Ok(())
    }

    /// Deletes many secrets; a missing one is not an error.
    async fn delete_many(&self, names: Vec<String>) -> Result<(), SecretError> {
        for name in names {
            match self.delete(&name).await {
                Ok(()) | Err(SecretError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
