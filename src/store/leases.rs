//! Process leases: a job that only one process may run at a time (the public `serve`, the
//! daily delivery runner) holds a named row in `process_leases` and renews it while it runs.
//! A lease whose expiry has passed belongs to nobody, so a crashed process is taken over once
//! its lease runs out. Expiry is wall-clock time (like the push leases in `deliveries.rs`):
//! leases are between processes and must not follow a test or sandbox clock.

use super::{StoreError, wall_ms};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::fmt;
use std::time::Duration;

/// Who holds a lease: a random id per process instance, with its pid and host for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Random (uuid v4): tells two instances apart even with the same pid on two hosts.
    pub id: String,
    /// The process id.
    pub pid: u32,
    /// The host name, or "unknown".
    pub host: String,
    /// Where its pid means something: the kernel's boot id and its pid namespace; `None` where
    /// `/proc` does not say.
    pub scope: Option<String>,
}

impl Holder {
    /// A new holder identity for this process instance.
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        ISSUED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        Self {
            id,
            pid: std::process::id(),
            host: hostname(),
            scope: process_scope(),
        }
    }
}

/// The holder ids this process issued: a lease with this pid but another id was left by an
/// earlier process that had the same pid (a restarted container's pid 1).
static ISSUED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl Default for Holder {
    fn default() -> Self {
        Self::new()
    }
}

/// This process's boot and pid namespace (`<boot id>/pid:[<inode>]`), from `/proc`.
fn process_scope() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// The host name as the kernel knows it; only for messages to the operator.
fn hostname() -> String {
    first_name([
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        std::fs::read_to_string("/etc/hostname").ok(),
        std::env::var("HOSTNAME").ok(),
    ])
}

/// The first of the candidate names that says something, or "unknown".
fn first_name(candidates: [Option<String>; 3]) -> String {
    candidates
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The lease was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// Wall-clock unix ms until which it is ours unless renewed.
    pub expires_ms: i64,
    /// An expired lease of another holder that was taken over (it crashed or hung).
    pub took_over: Option<Held>,
}

/// A lease held by someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The holder's random id.
    pub holder: String,
    /// The holder's process id, if recorded.
    pub pid: Option<i64>,
    /// The holder's host, if recorded.
    pub host: Option<String>,
    /// The holder's boot and pid namespace, if recorded.
    pub scope: Option<String>,
    /// When the holder took it (RFC 3339 UTC), if recorded.
    pub since: Option<String>,
    /// Wall-clock unix ms until which it is held unless renewed.
    pub expires_ms: i64,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "process {pid}")?,
            None => write!(f, "process {}", self.holder)?,
        }
        write!(
            f,
            " on {}",
            self.host.as_deref().unwrap_or("an unknown host")
        )?;
        if let Some(since) = &self.since {
            write!(f, " since {since}")?;
        }
        match DateTime::<Utc>::from_timestamp_millis(self.expires_ms) {
            Some(t) => write!(f, " (lease until {})", super::ts(t)),
            None => Ok(()),
        }
    }
}

/// Why a lease was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// Another live process holds it.
    #[error("held by {0}")]
    Held(Held),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AcquireError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Takes the lease `name` for `holder` for `ttl`: free, expired, already ours, or held by a
/// process that is certainly gone ([`holder_is_gone`]: killed or crashed on this host), which is
/// taken over at once rather than after its expiry.
pub fn acquire(
    conn: &Connection,
    name: &str,
    holder: &Holder,
    ttl: Duration,
) -> Result<Acquired, AcquireError> {
    acquire_at(conn, name, holder, ttl, wall_ms())
}

fn acquire_at(
    conn: &Connection,
    name: &str,
    holder: &Holder,
    ttl: Duration,
    now_ms: i64,
) -> Result<Acquired, AcquireError> {
    // IMMEDIATE: the read and the write below are one decision no other process can split.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let current = read(&tx, name)?;
    let expires_ms = now_ms.saturating_add(ttl_ms(ttl));
    let ours = current.as_ref().is_some_and(|c| c.holder == holder.id);
    let took_over = match current {
        Some(c)
            if c.holder != holder.id && c.expires_ms > now_ms && !holder_is_gone(&c, holder) =>
        {
            return Err(AcquireError::Held(c));
        }
        Some(c) if !ours => Some(c),
        _ => None,
    };
    // Ours already: keep when we took it (NULL keeps the stored value below).
    let since = (!ours)
        .then(|| DateTime::<Utc>::from_timestamp_millis(now_ms).map(super::ts))
        .flatten();
    tx.execute(
        "INSERT INTO process_leases (name, holder, pid, host, scope, acquired_at, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, pid = excluded.pid,
           host = excluded.host, scope = excluded.scope,
           acquired_at = COALESCE(?6, process_leases.acquired_at),
           expires_ms = excluded.expires_ms",
        params![
            name,
            holder.id,
            holder.pid,
            holder.host,
            holder.scope,
            since,
            expires_ms
        ],
    )?;
    tx.commit()?;
    Ok(Acquired {
        expires_ms,
        took_over,
    })
}

/// Whether a holder is certainly gone: it ran on this host, in this boot and pid namespace,
/// and its process no longer exists, or it had this process's id without being issued by this
/// process (an earlier process of this namespace with the same pid). Anywhere else (another
/// host, another container's pid namespace) nobody can tell: false (wait for the lease to
/// expire). A holder recorded before scopes were (no scope) is judged by its host alone.
pub fn holder_is_gone(held: &Held, me: &Holder) -> bool {
    let (Some(pid), Some(host)) = (held.pid, held.host.as_deref()) else {
        return false;
    };
    if host != me.host || held.holder == me.id {
        return false;
    }
    if held.scope.is_some() && held.scope != me.scope {
        return false;
    }
    if pid == i64::from(std::process::id()) {
        let issued = ISSUED.lock().unwrap_or_else(|e| e.into_inner());
        return !issued.contains(&held.holder);
    }
    let proc = std::path::Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Extends a lease `holder` holds by `ttl` from now; false if it is no longer theirs (taken
/// over after it expired, or released).
pub fn renew(
    conn: &Connection,
    name: &str,
    holder: &Holder,
    ttl: Duration,
) -> Result<bool, StoreError> {
    renew_at(conn, name, holder, ttl, wall_ms())
}

fn renew_at(
    conn: &Connection,
    name: &str,
    holder: &Holder,
    ttl: Duration,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE process_leases SET expires_ms = ?3 WHERE name = ?1 AND holder = ?2",
        )?
        .execute(params![name, holder.id, now_ms.saturating_add(ttl_ms(ttl))])?;
    Ok(n == 1)
}

/// Gives a lease up, if `holder` still holds it.
pub fn release(conn: &Connection, name: &str, holder: &Holder) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM process_leases WHERE name = ?1 AND holder = ?2")?
        .execute(params![name, holder.id])?;
    Ok(())
}

/// Who holds `name` now, if anyone (expired leases included: their `expires_ms` says so).
pub fn current(conn: &Connection, name: &str) -> Result<Option<Held>, StoreError> {
    Ok(read(conn, name)?)
}

fn read(conn: &Connection, name: &str) -> rusqlite::Result<Option<Held>> {
    conn.prepare_cached(
        "SELECT holder, pid, host, acquired_at, expires_ms, scope FROM process_leases WHERE name = ?1",
    )?
    .query_row([name], |r| {
        Ok(Held {
            holder: r.get(0)?,
            pid: r.get(1)?,
            host: r.get(2)?,
            since: r.get(3)?,
            expires_ms: r.get(4)?,
            scope: r.get(5)?,
        })
    })
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn two_connections() -> (tempfile::TempDir, Connection, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.db");
        let a = crate::store::open_and_migrate(&path).unwrap();
        let b = crate::store::connect(&path).unwrap();
        (dir, a, b)
    }

    fn holder(pid: u32, host: &str) -> Holder {
        Holder {
            id: uuid::Uuid::new_v4().to_string(),
            pid,
            host: host.into(),
            scope: Some(format!("scope-of-{host}")),
        }
    }

    #[test]
    fn a_live_lease_is_refused_to_another_holder_and_names_who_holds_it() {
        let (_dir, a, b) = two_connections();
        let (one, two) = (holder(111, "host-a"), holder(222, "host-b"));
        let got = acquire_at(&a, "serve", &one, TTL, 1_000_000).unwrap();
        assert_eq!(got.took_over, None);
        assert_eq!(got.expires_ms, 1_000_000 + 30_000);

        match acquire_at(&b, "serve", &two, TTL, 1_000_000 + 29_999) {
            Err(AcquireError::Held(h)) => {
                assert_eq!(h.holder, one.id);
                assert_eq!(h.pid, Some(111));
                assert_eq!(h.host.as_deref(), Some("host-a"));
                assert_eq!(h.since.as_deref(), Some("1970-01-01T00:16:40.000Z"));
                let msg = h.to_string();
                assert!(msg.contains("process 111 on host-a since 1970-01-01T00:16:40.000Z"));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        // Other names are independent.
        acquire_at(&b, "delivery", &two, TTL, 1_000_000).unwrap();
    }

    #[test]
    fn the_holder_may_acquire_again_and_keeps_its_since() {
        let (_dir, a, _b) = two_connections();
        let one = holder(1, "h");
        acquire_at(&a, "serve", &one, TTL, 5_000).unwrap();
        let again = acquire_at(&a, "serve", &one, TTL, 9_000).unwrap();
        assert_eq!(again.expires_ms, 39_000);
        let now = current(&a, "serve").unwrap().unwrap();
        assert_eq!(now.since.as_deref(), Some("1970-01-01T00:00:05.000Z"));
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        let (_dir, a, b) = two_connections();
        let (one, two) = (holder(1, "a"), holder(2, "b"));
        acquire_at(&a, "serve", &one, TTL, 0).unwrap();
        let got = acquire_at(&b, "serve", &two, TTL, 30_000).unwrap();
        assert_eq!(got.took_over.map(|h| h.holder), Some(one.id.clone()));
        let now = current(&a, "serve").unwrap().unwrap();
        assert_eq!((now.holder, now.pid), (two.id.clone(), Some(2)));
        assert_eq!(now.since.as_deref(), Some("1970-01-01T00:00:30.000Z"));

        // The former holder learns it lost the lease and cannot release the new holder's.
        assert!(!renew_at(&a, "serve", &one, TTL, 31_000).unwrap());
        release(&a, "serve", &one).unwrap();
        assert_eq!(current(&b, "serve").unwrap().unwrap().holder, two.id);
    }

    #[test]
    fn renewing_keeps_it_from_expiring() {
        let (_dir, a, b) = two_connections();
        let (one, two) = (holder(1, "a"), holder(2, "b"));
        acquire_at(&a, "serve", &one, TTL, 0).unwrap();
        assert!(renew_at(&a, "serve", &one, TTL, 20_000).unwrap());
        assert!(matches!(
            acquire_at(&b, "serve", &two, TTL, 40_000),
            Err(AcquireError::Held(_))
        ));
        acquire_at(&b, "serve", &two, TTL, 50_000).unwrap();
    }

    #[test]
    fn a_released_lease_is_free_at_once() {
        let (_dir, a, b) = two_connections();
        let (one, two) = (holder(1, "a"), holder(2, "b"));
        acquire(&a, "serve", &one, TTL).unwrap();
        release(&a, "serve", &one).unwrap();
        assert_eq!(current(&a, "serve").unwrap(), None);
        let got = acquire(&b, "serve", &two, TTL).unwrap();
        assert_eq!(got.took_over, None);
        assert!(!renew(&a, "serve", &one, TTL).unwrap());
        assert!(renew(&b, "serve", &two, TTL).unwrap());
    }

    #[test]
    fn a_holder_whose_process_is_gone_is_taken_over_at_once() {
        let (_dir, a, b) = two_connections();
        let me = Holder::new();
        let gone = Holder {
            id: uuid::Uuid::new_v4().to_string(),
            pid: u32::MAX - 1, // no such process
            host: me.host.clone(),
            scope: me.scope.clone(),
        };
        acquire(&a, "serve", &gone, TTL).unwrap();
        let held = current(&a, "serve").unwrap().unwrap();
        assert!(holder_is_gone(&held, &me));
        let got = acquire(&b, "serve", &me, TTL).unwrap();
        assert_eq!(got.took_over.map(|t| t.holder), Some(gone.id.clone()));
        assert_eq!(current(&a, "serve").unwrap().unwrap().holder, me.id);
        // Only once: the previous holder's row is gone, and a live holder is not taken over.
        assert_eq!(acquire(&b, "serve", &me, TTL).unwrap().took_over, None);
        assert!(matches!(
            acquire(&a, "serve", &Holder::new(), TTL),
            Err(AcquireError::Held(_))
        ));

        let earlier = Held {
            pid: Some(i64::from(std::process::id())),
            holder: "issued by an earlier process with this pid".into(),
            ..held.clone()
        };
        assert!(
            holder_is_gone(&earlier, &me),
            "a restarted container's pid 1"
        );
        let sibling = Holder::new();
        let sibling = Held {
            pid: Some(i64::from(sibling.pid)),
            holder: sibling.id,
            ..held.clone()
        };
        assert!(
            !holder_is_gone(&sibling, &me),
            "another live instance in this process"
        );
        let elsewhere = Held {
            host: Some("another-host".into()),
            ..held.clone()
        };
        assert!(
            !holder_is_gone(&elsewhere, &me),
            "another host: unknown, wait for expiry"
        );
        let other_namespace = Held {
            scope: Some("another boot or pid namespace".into()),
            ..held.clone()
        };
        assert!(
            !holder_is_gone(&other_namespace, &me),
            "another container with this host name: its pids are not ours to look up"
        );
        let before_scopes = Held {
            scope: None,
            ..held.clone()
        };
        assert!(
            holder_is_gone(&before_scopes, &me),
            "recorded by an older yorisoi: judged by its host"
        );
        let parent = Held {
            pid: Some(1),
            ..held
        };
        assert!(!holder_is_gone(&parent, &me), "a live process on this host");
    }

    #[test]
    fn the_host_is_the_kernels_host_name() {
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname")
            && !name.trim().is_empty()
        {
            assert_eq!(hostname(), name.trim());
        }
        assert!(!hostname().is_empty());
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(first_name([s("vm\n"), s("other"), None]), "vm");
        assert_eq!(first_name([None, s("  \n"), s("from-env")]), "from-env");
        assert_eq!(first_name([None, None, s("")]), "unknown");
    }

    #[test]
    fn an_absurd_ttl_is_capped_far_ahead_without_overflow() {
        assert_eq!(ttl_ms(Duration::from_millis(1_500)), 1_500);
        assert_eq!(ttl_ms(Duration::MAX), i64::MAX / 2);
        assert_eq!(
            1_000i64.saturating_add(ttl_ms(Duration::MAX)),
            1_000 + i64::MAX / 2
        );
    }

    #[test]
    fn a_new_holder_is_this_process() {
        let (h1, h2) = (Holder::new(), Holder::new());
        assert_eq!(h1.pid, std::process::id());
        assert!(!h1.host.is_empty());
        assert!(
            h1.scope.as_deref().is_some_and(|s| s.contains("/pid:[")),
            "{:?}",
            h1.scope
        );
        assert_eq!(h1.scope, h2.scope);
        assert_ne!(h1.id, h2.id, "each instance is its own holder");
    }
}
