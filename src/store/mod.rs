//! SQLite: the one place data lives. Connections are opened with WAL, foreign keys and a busy
//! timeout; migrations are embedded and applied at start. rusqlite never runs on an async
//! runtime thread: callers use a dedicated thread or `spawn_blocking`.

pub mod broadcasts;
pub mod deliveries;
pub mod events;
pub mod family;
mod inbox;
pub mod leases;
pub mod outbox;
pub mod planning;
pub mod registrations;
pub mod retention;
pub mod sends;
pub mod staff;
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

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        // Its message names the type expected, never the stored value.
        let kind = match e {
            rusqlite::types::FromSqlError::InvalidType => "of another type",
            rusqlite::types::FromSqlError::OutOfRange(_) => "out of range",
            _ => "unreadable",
        };
        StoreError::Corrupt(format!("a stored value is {kind}"))
    }
}

/// A connection owned by one task (the processor, the reply sender, a delivery run), used off the
/// async threads: rusqlite never runs on a runtime thread.
#[derive(Clone)]
pub struct Db(std::sync::Arc<std::sync::Mutex<Connection>>);

impl Db {
    /// Wraps a connection.
    pub fn new(conn: Connection) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(conn)))
    }

    /// Runs `f` on the connection in the blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || f(&mut db.lock().unwrap_or_else(|e| e.into_inner())))
            .await?
    }

    /// The connection, for code already off the async threads.
    pub fn blocking(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The migrations, in order, embedded in the binary.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_core", include_str!("../../migrations/0001_core.sql")),
    (
        "0002_deliveries",
        include_str!("../../migrations/0002_deliveries.sql"),
    ),
    (
        "0003_send_engine",
        include_str!("../../migrations/0003_send_engine.sql"),
    ),
    (
        "0004_registration_notices",
        include_str!("../../migrations/0004_registration_notices.sql"),
    ),
    (
        "0005_retention",
        include_str!("../../migrations/0005_retention.sql"),
    ),
    (
        "0006_leases",
        include_str!("../../migrations/0006_leases.sql"),
    ),
    (
        "0007_sends",
        include_str!("../../migrations/0007_sends.sql"),
    ),
    (
        "0008_lease_scope",
        include_str!("../../migrations/0008_lease_scope.sql"),
    ),
    (
        "0009_staff_console",
        include_str!("../../migrations/0009_staff_console.sql"),
    ),
    (
        "0010_stats",
        include_str!("../../migrations/0010_stats.sql"),
    ),
    (
        "0011_life_events",
        include_str!("../../migrations/0011_life_events.sql"),
    ),
    (
        "0012_richmenus",
        include_str!("../../migrations/0012_richmenus.sql"),
    ),
];

/// Opens a connection with the settings every connection gets; its commits survive a crash of
/// the process (see [`Durability`]). A database file yorisoi creates is readable by its owner
/// only (0600), and so is a folder it creates for it (0700); SQLite gives the `-wal` and `-shm`
/// files the main file's mode.
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
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the database folder {}", dir.display()))?;
    }
    // Created here, before SQLite would create it with the process umask (often 0644). Only
    // when it does not exist yet: closing any other descriptor of the file drops every POSIX
    // lock this process holds on it, SQLite's included, and then another process closing its
    // last connection deletes the WAL under this one's feet (writes lost).
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the database {}", path.display()))?;
    }
    restrict_existing(path);
    let mut conn = Connection::open(path)
        .with_context(|| format!("opening the database {}", path.display()))?;
    // The first statement reads the file: a file that is not SQLite fails here.
    configure(&mut conn, durability).map_err(|e| {
        anyhow::anyhow!(
            "cannot use the database {}: {}",
            path.display(),
            sqlite_reason(&e)
        )
    })?;
    Ok(conn)
}

/// A database created by an earlier version may be readable by others: it becomes 0600 (with its
/// `-wal` and `-shm` files), or a warning says why not.
fn restrict_existing(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 == 0 {
            continue;
        }
        match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {
                tracing::warn!(file = %file.display(), "the database was readable by other users; it is now 0600")
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "the database is readable by other users and could not be made 0600")
            }
        }
    }
}

/// SQLite's reason in one line, without the statement it was running (a migration's whole SQL
/// would otherwise be printed).
fn sqlite_reason(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            "it is not an SQLite database, so not a yorisoi database".into()
        }
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// `PRAGMA application_id` of a yorisoi database: "yori".
const APPLICATION_ID: i32 = 0x796f_7269;

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

fn configure(conn: &mut Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_handler(Some(busy_handler))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted and overwritten content is zeroed, so an erased reader's nickname or a cleared
    // webhook body does not linger in free space inside the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // 8 MiB of page cache per connection (SQLite's default is 2 MiB): the hot ends of the inbox
    // and outbox stay in memory instead of being read back from the file.
    conn.pragma_update(None, "cache_size", -8192)?;
    Ok(())
}

/// Opens the database and applies any migration not yet applied. Refuses, in one line naming
/// the file, a file that is not a yorisoi database or was used by a newer yorisoi.
pub fn open_and_migrate(path: &Path) -> anyhow::Result<Connection> {
    let refused = |e: anyhow::Error| anyhow::anyhow!("the database {}: {e}", path.display());
    // Look before touching: opening read-write would switch another application's file to WAL.
    if path.exists() {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| refused(anyhow::anyhow!("{}", sqlite_reason(&e))))?;
        check_identity(&conn).map_err(refused)?;
    }
    let mut conn = connect(path)?;
    migrate(&mut conn).map_err(refused)?;
    Ok(conn)
}

/// Checks that the database is yorisoi's (stamped with its application id, or empty, or from
/// before the stamp holding yorisoi's tables) and not from a newer yorisoi; returns its
/// schema version and whether it still needs the stamp.
fn check_identity(conn: &Connection) -> anyhow::Result<(usize, bool)> {
    let one_line = |e: rusqlite::Error| anyhow::anyhow!("{}", sqlite_reason(&e));
    let applied = conn
        .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map_err(one_line)?;
    let app_id = conn
        .pragma_query_value(None, "application_id", |r| r.get::<_, i32>(0))
        .map_err(one_line)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(one_line)?;
    if app_id != 0 && app_id != APPLICATION_ID {
        anyhow::bail!(
            "not a yorisoi database (it belongs to another application, application id {app_id:#x})"
        );
    }
    let ours = ["line_users", "webhook_events", "registrations"]
        .iter()
        .all(|t| tables.iter().any(|n| n == t));
    if app_id == 0 && !tables.is_empty() && (applied == 0 || !ours) {
        anyhow::bail!(
            "not a yorisoi database (it holds {} table(s) of another application)",
            tables.len()
        );
    }
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        anyhow::bail!(
            "schema version {applied}, but this yorisoi knows up to {}: it was used by a newer yorisoi (upgrade, or use another file)",
            MIGRATIONS.len()
        );
    }
    Ok((applied, app_id == 0))
}

/// Applies pending migrations, each in its own transaction, after checking that the database
/// is yorisoi's.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let (applied, unstamped) = check_identity(conn)?;
    if unstamped {
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| anyhow::anyhow!("{}", sqlite_reason(&e)))?;
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let apply = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = write_tx(conn)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()
        };
        apply(conn)
            .map_err(|e| anyhow::anyhow!("cannot apply migration {name}: {}", sqlite_reason(&e)))?;
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

/// Wall-clock unix milliseconds, for claims and leases between processes: they must not follow a
/// test or sandbox clock.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A timestamp as stored: RFC 3339 in UTC with milliseconds.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(prepare: impl FnOnce(&Path)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        prepare(&path);
        let e = open_and_migrate(&path).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&path.display().to_string()),
            "names the file: {msg}"
        );
        assert_eq!(msg.lines().count(), 1, "one line: {msg}");
        assert!(!msg.contains("CREATE"), "no SQL: {msg}");
        msg
    }

    #[test]
    fn a_database_that_is_not_yorisoi_s_is_refused_in_one_line() {
        let msg = refusal(|p| {
            std::fs::write(
                p,
                "just some text, long enough to not be a header ".repeat(40),
            )
            .unwrap()
        });
        assert!(msg.contains("not an SQLite database"), "{msg}");

        let msg = refusal(|p| {
            let c = Connection::open(p).unwrap();
            c.execute_batch("CREATE TABLE line_users (x); CREATE TABLE notes (y);")
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE notes (y);")
            .unwrap();
        open_and_migrate(&other).unwrap_err();
        let mode: String = Connection::open(&other)
            .unwrap()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(
            mode, "delete",
            "another application's file is left as it was"
        );
        assert!(
            msg.contains("not a yorisoi database") && msg.contains("2 table(s)"),
            "{msg}"
        );

        let msg = refusal(|p| {
            let c = Connection::open(p).unwrap();
            c.execute_batch("CREATE TABLE notes (y); PRAGMA user_version = 2;")
                .unwrap();
        });
        assert!(msg.contains("not a yorisoi database"), "{msg}");

        let msg = refusal(|p| {
            let c = Connection::open(p).unwrap();
            c.pragma_update(None, "application_id", 0x1234).unwrap();
        });
        assert!(msg.contains("another application"), "{msg}");

        let msg = refusal(|p| {
            open_and_migrate(p).unwrap();
            let c = Connection::open(p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        });
        assert!(
            msg.contains("schema version 99") && msg.contains("newer yorisoi"),
            "{msg}"
        );
    }

    #[test]
    fn a_yorisoi_database_opens_again_and_an_unstamped_one_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.db");
        open_and_migrate(&path).unwrap();
        let c = open_and_migrate(&path).unwrap();
        let id: i32 = c
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
        // A database from before the stamp, with yorisoi's tables, is recognised and stamped.
        c.pragma_update(None, "application_id", 0).unwrap();
        drop(c);
        let c = open_and_migrate(&path).unwrap();
        let id: i32 = c
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
    }

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
            .prepare("SELECT registration_id, notice_id, send_id, taken_at FROM registration_notices ORDER BY 1, 2")
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
    fn replies_and_pushes_recorded_before_sends_are_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::connect(&dir.path().join("old.db")).unwrap();
        for (name, sql) in &super::MIGRATIONS[..6] {
            assert!(name.starts_with("000"));
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            "INSERT INTO line_users (id, line_user_id, created_at, updated_at) VALUES (1, 'U1', 'now', 'now');
             INSERT INTO registrations (id, user_id, stage, nickname, birthday, status, started_on, created_at, updated_at)
             VALUES (1, 1, 'child', 'a', '2026-01-01', 'active', '2026-01-01', 'now', 'now');
             INSERT INTO deliveries (id, user_id, delivery_date, seq, retry_key, status, planned_at, sent_at, attempts)
             VALUES (10, 1, '2026-01-01', 0, 'k10', 'sent', 't10', 's10', 1),
                    (11, 1, '2026-01-02', 0, 'k11', 'planned', 't11', NULL, 1),
                    (12, 1, '2026-01-03', 0, 'k12', 'skipped', 't12', NULL, 0);
             INSERT INTO delivery_items (delivery_id, position, registration_id, content_id)
             VALUES (10, 0, 1, 'child/day-0'), (11, 0, 1, 'notice/newborn-visit');
             INSERT INTO registration_notices (registration_id, notice_id, delivery_id, open_until)
             VALUES (1, 'newborn-visit', 11, '2026-02-01');
             INSERT INTO outbox (id, user_id, reply_token, messages, retry_key, status, created_at, via, reply_attempts)
             VALUES (1, 1, NULL, '[]', 'r1', 'sent', 'c1', 'reply', 1),
                    (2, 1, 'tok', '[{\"type\":\"text\",\"text\":\"x\"}]', 'r2', 'pending', 'c2', NULL, 0);",
        )
        .unwrap();
        super::migrate(&mut conn).unwrap();
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = conn
            .prepare("SELECT id, kind, status, day, messages, reply_token FROM sends ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let s = |v: &str| Some(v.to_owned());
        let daily = |id, status: &str, day, messages: Option<String>| {
            (
                id,
                "daily".to_owned(),
                status.to_owned(),
                s(day),
                messages,
                None,
            )
        };
        assert_eq!(
            rows,
            vec![
                daily(10, "sent", "2026-01-01", s("[]")),
                daily(11, "pending", "2026-01-02", None),
                daily(12, "dropped", "2026-01-03", s("[]")),
                (13, "reply".into(), "sent".into(), None, s("[]"), None),
                (
                    14,
                    "reply".into(),
                    "pending".into(),
                    None,
                    s(r#"[{"type":"text","text":"x"}]"#),
                    s("tok")
                ),
            ]
        );
        let items: i64 = conn
            .query_row("SELECT count(*) FROM send_items", [], |r| r.get(0))
            .unwrap();
        assert_eq!(items, 2);
        let taken: i64 = conn
            .query_row("SELECT send_id FROM registration_notices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(taken, 11, "the notice still names the push that took it");
        for gone in ["outbox", "deliveries", "delivery_items"] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                    [gone],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 0, "{gone}");
        }
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
