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

/// `first` and whatever else is waiting in `rx` already, `max` in all: one group.
fn gather<T>(first: T, rx: &mpsc::Receiver<T>, max: usize) -> Vec<T> {
    let mut group = vec![first];
    while group.len() < max {
        match rx.try_recv() {
            Ok(item) => group.push(item),
            Err(_) => break,
        }
    }
    group
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let jobs = gather(first, &rx, MAX_GROUP);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> InboundEvent {
        InboundEvent {
            webhook_event_id: id.into(),
            event_type: "message".into(),
            line_user_id: Some("U1".into()),
            timestamp_ms: 1,
            redelivery: false,
            body: "{}".into(),
        }
    }

    #[test]
    fn a_group_takes_what_is_waiting_up_to_its_size() {
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        assert_eq!(gather(-1, &rx, 4), vec![-1, 0, 1, 2]);
        assert_eq!(gather(-1, &rx, 100), vec![-1, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(
            gather(-1, &rx, 1),
            vec![-1],
            "nothing waits beyond the size"
        );
    }

    #[tokio::test]
    async fn each_request_learns_how_many_of_its_events_were_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.db");
        drop(super::super::open_and_migrate(&path).unwrap());
        let inbox = Inbox::start(&path).unwrap();
        let at = "2026-11-21T00:00:00.000Z".to_string();
        let new = inbox
            .store(vec![event("a"), event("b"), event("c")], at.clone())
            .await
            .unwrap();
        assert_eq!(new, 3);
        let again = inbox
            .store(vec![event("b"), event("d")], at.clone())
            .await
            .unwrap();
        assert_eq!(again, 1, "a redelivered event is not new");
        assert_eq!(inbox.store(vec![event("a")], at).await.unwrap(), 0);
    }
}
