//! SQLite: the one place data lives. Connections are opened with WAL, foreign keys and a busy
//! timeout; migrations are embedded and applied at start. rusqlite never runs on an async
//! runtime thread: callers use a dedicated thread or `spawn_blocking`.

pub mod deliveries;
pub mod events;
mod inbox;
pub mod outbox;
pub mod registrations;
pub mod users;

pub use inbox::{InboundEvent, Inbox};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// A store failure at a module boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store's writer thread has stopped.
    #[error("the store is shutting down")]
    Closed,
    /// Stored JSON could not be read back.
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

/// The migrations, in order, embedded in the binary.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("../../migrations/0001_core.sql")),
    (
        "0002_deliveries",
        include_str!("../../migrations/0002_deliveries.sql"),
    ),
];

/// Opens a connection with the settings every connection gets.
pub fn connect(path: &Path) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database folder {}", dir.display()))?;
    }
    let conn = Connection::open(path)
        .with_context(|| format!("opening the database {}", path.display()))?;
    configure(&conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens the database and applies any migration not yet applied.
pub fn open_and_migrate(path: &Path) -> anyhow::Result<Connection> {
    let mut conn = connect(path)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies pending migrations, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let applied: usize =
        conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        anyhow::bail!(
            "the database has {applied} migrations applied but this build knows {}: it was used by a newer yorisoi",
            MIGRATIONS.len()
        );
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("applying migration {name}"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied migration");
    }
    Ok(())
}

/// A timestamp as stored: RFC 3339 in UTC with milliseconds.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
