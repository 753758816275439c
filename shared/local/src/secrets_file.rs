//! [`SecretStore`] on a JSON file `{ "name": "value" }` readable by its owner only.
//!
//! The file is re-read on every `get` (another process, such as the CLI, may have changed it)
//! and replaced atomically on every write: a temporary file in the same directory (mode 0600),
//! fsync, rename, fsync of the directory. Writers in different processes are serialized by an
//! advisory lock on `<file>.lock`. Secret values never appear in errors or `Debug` output.

use async_trait::async_trait;
use classy_sync_core::ports::{SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct SecretsFile {
    path: Arc<PathBuf>,
    /// Serializes this process's writers; the lock file serializes processes.
    write_lock: Arc<tokio::sync::Mutex<()>>,
}

impl SecretsFile {
    /// Opens the file, creating it empty (`{}`, mode 0600) when missing. Refuses a file other
    /// users can read or write, and a file that is not a JSON object of strings.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SecretError> {
        let path = path.as_ref().to_path_buf();
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {
                read_map(&path)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| io_error(&path, e))?;
                    }
                }
                let _guard = FileLock::acquire(&path)?;
                // Another process may have created it while we waited for the lock.
                if !path.exists() {
                    write_map(&path, &BTreeMap::new())?;
                }
                read_map(&path)?;
            }
            Err(e) => return Err(io_error(&path, e)),
        }
        Ok(SecretsFile {
            path: Arc::new(path),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the stored secrets, sorted.
    pub async fn names(&self) -> Result<Vec<String>, SecretError> {
        let path = Arc::clone(&self.path);
        blocking(move || Ok(read_map(&path)?.into_keys().collect())).await
    }

    /// Read-modify-write under both locks.
    async fn update<F>(&self, f: F) -> Result<(), SecretError>
    where
        F: FnOnce(&mut BTreeMap<String, String>) -> Result<(), SecretError> + Send + 'static,
    {
        let _local = self.write_lock.lock().await;
        let path = Arc::clone(&self.path);
        blocking(move || {
            let _guard = FileLock::acquire(&path)?;
            let mut map = read_map(&path)?;
            f(&mut map)?;
            write_map(&path, &map)
        })
        .await
    }
}

async fn blocking<T, F>(f: F) -> Result<T, SecretError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SecretError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(SecretError::Unavailable(format!(
            "secrets task cancelled: {e}"
        ))),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> SecretError {
    SecretError::Unavailable(format!("secrets file {}: {e}", path.display()))
}

/// Only the owner may read or write the file.
#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Unavailable(format!(
            "secrets file {} has mode {mode:04o}, so other users can access it; \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), SecretError> {
    Ok(())
}

fn read_map(path: &Path) -> Result<BTreeMap<String, String>, SecretError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(SecretError::Unavailable(format!(
            "secrets file {} is not a regular file",
            path.display()
        )));
    }
    check_mode(path, &meta)?;
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    // The parser's messages are not used: some quote the offending value.
    serde_json::from_slice(&bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Eof => "unexpected end of file",
            serde_json::error::Category::Data => "not an object of string values",
            serde_json::error::Category::Io => "unreadable",
        };
        SecretError::Corrupt(format!(
            "secrets file {}: {what} at line {} column {}; expected {{\"name\": \"value\", ...}}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

fn write_map(path: &Path, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secrets".into());
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let mut body =
        serde_json::to_vec_pretty(map).map_err(|e| SecretError::Unavailable(e.to_string()))?;
    body.push(b'\n');
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, e));
    }
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// An exclusive advisory lock on `<file>.lock`, released on drop.
struct FileLock {
    #[cfg_attr(not(unix), allow(dead_code))]
    file: std::fs::File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<Self, SecretError> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let file = create_or_open_private(&lock_path).map_err(|e| io_error(&lock_path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            loop {
                // SAFETY: flock on a descriptor we own; no memory is passed.
                let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
                if rc == 0 {
                    break;
                }
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(io_error(&lock_path, err));
                }
            }
        }
        Ok(FileLock { file })
    }
}

#[cfg(unix)]
fn create_or_open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_or_open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl Drop for FileLock {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: as above. Closing the file would release it too; this is explicit.
            unsafe {
                libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
            }
        }
    }
}

#[async_trait]
impl SecretStore for SecretsFile {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let path = Arc::clone(&self.path);
        let name = name.to_owned();
        blocking(move || {
            let mut map = read_map(&path)?;
            match map.remove(&name) {
                Some(v) => Ok(SecretString::from(v)),
                None => Err(SecretError::NotFound(name)),
            }
        })
        .await
    }

    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        let name = name.to_owned();
        self.update(move |map| {
            map.insert(name, value.expose_secret().to_owned());
            Ok(())
        })
        .await
    }

    /// Like Secrets Manager, deleting a missing secret is `NotFound`.
    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        let name = name.to_owned();
        self.update(move |map| match map.remove(&name) {
            Some(_) => Ok(()),
            None => Err(SecretError::NotFound(name)),
        })
        .await
    }

    /// One rewrite of the file for all of them (an import of 1,000 organizations would
    /// otherwise rewrite and fsync it 1,000 times).
    async fn put_many(&self, secrets: Vec<(String, SecretString)>) -> Result<(), SecretError> {
        if secrets.is_empty() {
            return Ok(());
        }
        self.update(move |map| {
            for (name, value) in secrets {
                map.insert(name, value.expose_secret().to_owned());
            }
            Ok(())
        })
        .await
    }

    async fn delete_many(&self, names: Vec<String>) -> Result<(), SecretError> {
        if names.is_empty() {
            return Ok(());
        }
        self.update(move |map| {
            for name in names {
                map.remove(&name);
            }
            Ok(())
        })
        .await
    }
}
