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
    (
        "0004_registration_notices",
        include_str!("../../migrations/0004_registration_notices.sql"),
    ),
];

/// Opens a connection with the settings every connection gets; its commits survive a crash of
/// the process (see [`Durability`]).
pub fn connect(path: &Path) -> anyhow::Result<Connection> {
    connect_with(path, Durability::Normal)
}

/// Opens a connection whose commits survive a power failure once they return.
pub fn connect_durable(path: &Path) -> anyhow::Result<Connection> {
    connect_with(path, Durability::Full)
}

/// What a commit promises once it returns.
///
/// In WAL mode a commit appends to one log file; `FULL` syncs that file at every commit,
/// `NORMAL` only at checkpoints, so on power loss (never on a crash of the process) the last
/// `NORMAL` commits can vanish. A sync covers everything appended before it, whichever
/// connection wrote it: one durable commit makes every earlier commit durable too. A sync costs
/// milliseconds on a real disk (about 5 ms on the development machine), and is paid with the
/// write lock held, so it goes where a promise is made to the outside:
/// - the inbox (`inbox.rs`) is `Full`: LINE never redelivers an event answered 200. Group commit
///   shares one sync among every request of a burst;
/// - delivery records are `Normal`: a push is recorded before it is sent; if power loss takes
///   the record (or its outcome), the rerun plans the same push under the same deterministic
///   retry key and LINE answers 409, so nothing is sent twice;
/// - conversation state and queued replies are `Normal`: their events are kept durably by the
///   inbox and processed again if the commit vanishes. Replies are sent after that commit; what
///   keeps a reply from going out twice is one durable commit between the processor's commit
///   and the request to LINE: the reply's claim (a `connect_durable` connection), which syncs
///   the processor's commit with it. A sync for every processing batch would hold the write
///   lock for milliseconds each time, straight into webhook latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a crash of the process.
    Normal,
    /// `synchronous=FULL`: survives power loss.
    Full,
}

fn connect_with(path: &Path, durability: Durability) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database folder {}", dir.display()))?;
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("opening the database {}", path.display()))?;
    configure(&mut conn, durability)?;
    Ok(conn)
}

/// How long a connection waits for another writer before giving up.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// The pause between tries while another connection writes.
const BUSY_STEP: Duration = Duration::from_micros(100);

/// Waits in short steps: SQLite's own busy timeout sleeps 1, 2, 5, 10… ms, which would put
/// those pauses straight into webhook latency whenever the processor holds the write lock.
fn busy_handler(tries: i32) -> bool {
    if (tries as u128) * BUSY_STEP.as_micros() >= BUSY_WAIT.as_micros() {
        return false;
    }
    std::thread::sleep(BUSY_STEP);
    true
}

fn configure(conn: &mut Connection, durability: Durability) -> anyhow::Result<()> {
    conn.busy_handler(Some(busy_handler))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 8 MiB of page cache per connection (SQLite's default is 2 MiB): the hot ends of the inbox
    // and outbox stay in memory instead of being read back from the file.
    conn.pragma_update(None, "cache_size", -8192)?;
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
        let tx = write_tx(conn)?;
        tx.execute_batch(sql)
            .with_context(|| format!("applying migration {name}"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied migration");
    }
    Ok(())
}

/// Begins a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`): a
/// deferred one that reads first and writes later can fail with "database is locked" instead
/// of waiting for the busy timeout.
pub fn write_tx(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Whether an error is SQLite being busy or locked: worth retrying, never the data's fault.
pub fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Reads a stored `YYYY-MM-DD` date quickly (planning reads millions); chrono validates the
/// date and parses anything unusual.
pub fn read_date(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10))
    {
        return chrono::NaiveDate::from_ymd_opt(y as i32, m, d);
    }
    s.parse().ok()
}

/// A timestamp as stored: RFC 3339 in UTC with milliseconds.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durable_connections_sync_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let synchronous = |c: &rusqlite::Connection| {
            c.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))
                .unwrap()
        };
        assert_eq!(
            synchronous(&super::connect_durable(&path).unwrap()),
            2,
            "FULL"
        );
        assert_eq!(synchronous(&super::connect(&path).unwrap()), 1, "NORMAL");
    }

    #[test]
    fn notices_received_before_their_table_are_copied_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::connect(&dir.path().join("old.db")).unwrap();
        for (name, sql) in &super::MIGRATIONS[..2] {
            assert!(name.starts_with("000"));
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO line_users (id, line_user_id, created_at, updated_at) VALUES (1, 'U1', 'now', 'now');
             INSERT INTO registrations (id, user_id, stage, nickname, birthday, status, started_on, created_at, updated_at, notices_sent)
             VALUES (1, 1, 'child', 'a', '2026-01-01', 'active', '2026-01-01', 'now', 'now', 'birth-procedures,newborn-visit,checkup-1m'),
                    (2, 1, 'child', 'b', '2026-01-01', 'active', '2026-01-01', 'now', 'now', ''),
                    (3, 1, 'child', 'c', '2026-01-01', 'active', '2026-01-01', 'now', 'now', 'x');
             INSERT INTO deliveries (id, user_id, delivery_date, seq, retry_key, status, planned_at)
             VALUES (10, 1, '2026-01-01', 0, 'k10', 'sent', '2026-01-01T00:00:00.000Z'),
                    (11, 1, '2026-02-20', 0, 'k11', 'planned', '2026-02-20T00:00:00.000Z');
             INSERT INTO delivery_items (delivery_id, position, registration_id, content_id)
             VALUES (10, 0, 1, 'child/day-0'), (10, 1, 1, 'notice/newborn-visit'),
                    (11, 0, 2, 'notice/family-center-consultation');",
        )
        .unwrap();
        super::migrate(&mut conn).unwrap();
        let rows: Vec<(i64, String, Option<i64>, Option<String>)> = conn
            .prepare("SELECT registration_id, notice_id, delivery_id, taken_at FROM registration_notices ORDER BY 1, 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let unknown: i64 = conn
            .query_row(
                "SELECT count(*) FROM registration_notices WHERE open_until = '9999-12-31'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unknown, 5, "the window end of a copied notice is not known");
        let t = |s: &str| Some(s.to_owned());
        assert_eq!(
            rows,
            vec![
                (1, "birth-procedures".into(), None, None),
                (1, "checkup-1m".into(), None, None),
                (
                    1,
                    "newborn-visit".into(),
                    Some(10),
                    t("2026-01-01T00:00:00.000Z")
                ),
                (
                    2,
                    "family-center-consultation".into(),
                    Some(11),
                    t("2026-02-20T00:00:00.000Z")
                ),
                (3, "x".into(), None, None),
            ]
        );
    }

    #[test]
    fn reads_stored_dates() {
        let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(super::read_date("2027-03-15"), d(2027, 3, 15));
        assert_eq!(super::read_date("2024-02-29"), d(2024, 2, 29));
        assert_eq!(super::read_date("2023-02-29"), None);
        assert_eq!(
            super::read_date("2027-3-15"),
            d(2027, 3, 15),
            "chrono reads the rest"
        );
        assert_eq!(super::read_date("20a7-03-15"), None);
        assert_eq!(super::read_date(""), None);
    }
}
