//! The webhook inbox: a dedicated writer thread that commits events in groups, so a burst of
//! webhook requests shares one transaction and every request still gets its 200 only after its
//! events are committed.

use super::StoreError;
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// One webhook event as stored, with the fields processing is ordered and deduplicated by.
#[derive(Debug, Clone)]
pub struct InboundEvent {
    /// `webhookEventId` (or a digest of the event when LINE sent none).
    pub webhook_event_id: String,
    /// `type`.
    pub event_type: String,
    /// `source.userId` for user sources.
    pub line_user_id: Option<String>,
    /// `timestamp` in milliseconds.
    pub timestamp_ms: i64,
    /// `deliveryContext.isRedelivery`.
    pub redelivery: bool,
    /// The event's raw JSON.
    pub body: String,
}

struct Job {
    events: Vec<InboundEvent>,
    received_at: String,
    done: oneshot::Sender<Result<usize, StoreError>>,
}

/// Handle to the inbox writer thread.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::SyncSender<Job>,
}

/// Most jobs committed in one transaction.
const MAX_GROUP: usize = 512;
/// WAL pages (4 KiB) after which the inbox checkpoints itself; the default is 1,000.
const INBOX_CHECKPOINT_PAGES: i64 = 10_000;

impl Inbox {
    /// Starts the writer thread on its own durable connection: a commit survives power loss
    /// once it returns (one WAL sync per group, shared by every request of a burst).
    pub fn start(path: &Path) -> anyhow::Result<Self> {
        let conn = super::connect_durable(path)?;
        // Checkpoints (copying the log into the database, two more syncs) are left to the other
        // connections, which commit often (the processor marks every event): the inbox does one
        // only when the log has grown this far without them, so a burst is not held up by it.
        conn.pragma_update(None, "wal_autocheckpoint", INBOX_CHECKPOINT_PAGES)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(4096);
        std::thread::Builder::new()
            .name("yorisoi-inbox".into())
            .spawn(move || writer(conn, rx))?;
        Ok(Self { tx })
    }

    /// Stores events durably; resolves once they are committed. Returns how many were new.
    pub async fn store(
        &self,
        events: Vec<InboundEvent>,
        received_at: String,
    ) -> Result<usize, StoreError> {
        let (done, wait) = oneshot::channel();
        let tx = self.tx.clone();
        let job = Job {
            events,
            received_at,
            done,
        };
        // A full channel means the writer is behind: wait off the async threads.
        match tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || tx.send(job))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        wait.await.map_err(|_| StoreError::Closed)?
    }
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match commit(&mut conn, &jobs) {
            Ok(counts) => {
                for (job, n) in jobs.into_iter().zip(counts) {
                    let _ = job.done.send(Ok(n));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "inbox commit failed");
                for job in jobs {
                    let _ = job
                        .done
                        .send(Err(StoreError::Corrupt(format!("commit failed: {e}"))));
                }
            }
        }
    }
}

fn commit(conn: &mut Connection, jobs: &[Job]) -> rusqlite::Result<Vec<usize>> {
    let tx = super::write_tx(conn)?;
    let mut counts = Vec::with_capacity(jobs.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO webhook_events
               (webhook_event_id, event_type, line_user_id, event_timestamp, redelivery, body, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for job in jobs {
            let mut n = 0;
            for e in &job.events {
                n += insert.execute(params![
                    e.webhook_event_id,
                    e.event_type,
                    e.line_user_id,
                    e.timestamp_ms,
                    e.redelivery,
                    e.body,
                    job.received_at
                ])?;
            }
            counts.push(n);
        }
    }
    tx.commit()?;
    Ok(counts)
}
