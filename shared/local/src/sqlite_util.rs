//! What the SQLite-backed adapters share: opening a file safely (refusing garbage without
//! touching it), pragmas for multi-process use, schema versioning through `user_version`, and
//! running blocking SQLite calls off the async threads.

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How long a writer waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a database could not be opened; each adapter turns it into its own error type.
#[derive(Debug)]
pub(crate) enum OpenError {
    NotADatabase,
    Io(std::io::Error),
    Sqlite(rusqlite::Error),
    /// The file belongs to another component (its `application_id` differs).
    ForeignFile(i32),
    /// Written by a newer build whose schema this one does not know.
    TooNew {
        found: i64,
        supported: i64,
    },
}

impl OpenError {
    pub(crate) fn describe(&self, location: &str, what: &str) -> String {
        match self {
            OpenError::NotADatabase => format!("{location}: file is not a database"),
            OpenError::Io(e) => format!("{location}: {e}"),
            OpenError::Sqlite(e) => format!("{location}: {e}"),
            OpenError::ForeignFile(id) => format!(
                "{location}: not a classy-sync {what} file (application_id {id:#x}); \
                 is it another component's database?"
            ),
            OpenError::TooNew { found, supported } => format!(
                "{location}: schema version {found} was written by a newer classy-sync \
                 (this build knows up to {supported})"
            ),
        }
    }

    pub(crate) fn is_corrupt(&self) -> bool {
        match self {
            OpenError::NotADatabase => true,
            OpenError::Sqlite(e) => is_corrupt(e),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
            OpenError::NotADatabase
        } else {
            OpenError::Sqlite(e)
        }
    }
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e)
    }
}

pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// A file that exists and is not empty must start with SQLite's header; checked before SQLite
/// opens it so that nothing (no WAL, no journal-mode change) is ever written to a stranger's file.
fn check_header(path: &Path) -> Result<(), OpenError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let meta = f.metadata()?;
    if meta.is_dir() {
        return Err(OpenError::Io(std::io::Error::other("is a directory")));
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let mut head = [0u8; 16];
    if meta.len() < 16 || f.read_exact(&mut head).is_err() || &head != SQLITE_MAGIC {
        return Err(OpenError::NotADatabase);
    }
    Ok(())
}

/// Opens (creating if needed) a database file for use by several processes at once:
/// WAL, `synchronous=NORMAL`, a busy timeout, then brings the schema up to date.
/// `migrations[i]` takes the schema from version `i` to `i + 1`.
pub(crate) fn open_file(
    path: &Path,
    application_id: i32,
    migrations: &[&str],
) -> Result<Connection, OpenError> {
    check_header(path)?;
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Reading the header first gives NOTADB on a damaged file before any pragma writes.
    let _: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Io(std::io::Error::other(format!(
            "could not switch to WAL journal (got {mode}); is the file on a network share?"
        ))));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    configure(&conn);
    migrate(&mut conn, application_id, migrations)?;
    Ok(conn)
}

pub(crate) fn open_memory(
    application_id: i32,
    migrations: &[&str],
) -> Result<Connection, OpenError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn);
    migrate(&mut conn, application_id, migrations)?;
    Ok(conn)
}

fn configure(conn: &Connection) {
    conn.set_prepared_statement_cache_capacity(64);
}

fn migrate(
    conn: &mut Connection,
    application_id: i32,
    migrations: &[&str],
) -> Result<(), OpenError> {
    let supported = migrations.len() as i64;
    // IMMEDIATE: two processes opening a new file at once must not both create the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app != 0 && app != application_id {
        return Err(OpenError::ForeignFile(app));
    }
    if app == 0 && version != 0 {
        return Err(OpenError::ForeignFile(app));
    }
    if version > supported {
        return Err(OpenError::TooNew {
            found: version,
            supported,
        });
    }
    for sql in &migrations[version as usize..] {
        tx.execute_batch(sql)?;
    }
    if version < supported {
        tx.pragma_update(None, "user_version", supported)?;
        tx.pragma_update(None, "application_id", application_id)?;
    }
    tx.commit()?;
    Ok(())
}

/// One connection shared by the handle's tasks, used on tokio's blocking pool.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
    /// The file path, or `:memory:`, for error messages.
    pub(crate) location: Arc<str>,
    pub(crate) path: Option<PathBuf>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("location", &self.location)
            .finish()
    }
}

impl Db {
    pub(crate) fn new(conn: Connection, path: Option<PathBuf>) -> Self {
        let location: Arc<str> = match &path {
            Some(p) => p.display().to_string().into(),
            None => ":memory:".into(),
        };
        Db {
            conn: Arc::new(Mutex::new(conn)),
            location,
            path,
        }
    }

    /// Runs `f` with the connection on the blocking pool. A panic inside `f` is re-raised here.
    pub(crate) async fn run<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        });
        match task.await {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime shuts down under us.
            Err(e) => panic!("SQLite task was cancelled: {e}"),
        }
    }
}

/// Successor of `prefix` in byte order that no string starting with `prefix` reaches:
/// every `s` with `prefix <= s < successor` starts with `prefix`. `None` when there is no
/// upper bound (empty prefix, or only U+10FFFF characters).
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // UTF-8 byte order is code point order, so the next code point is the next string.
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn successor_bounds_prefix() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("A#").as_deref(), Some("A$"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("Z\u{10FFFF}").as_deref(), Some("["));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
    }
}
