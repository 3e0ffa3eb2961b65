//! Sends: the one record of every message to LINE (a conversation reply, a daily push, a
//! broadcast batch). A send is recorded with its kind, its recipient, its messages and its
//! retry key before the request leaves; claimed under a lease when it leaves the queue; its
//! outcome committed as it comes. A late outcome never overwrites `sent`.
//!
//! The queries of one kind live beside it: the reply queue in `outbox.rs`, the daily records
//! in `deliveries.rs`; what they share (claims, outcomes, multicast batches) lives here.

use super::StoreError;
use crate::domain::UserId;
use crate::line::Message;
use rusqlite::{Connection, params};

/// What a send is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An answer in the conversation.
    Reply,
    /// A push of the daily delivery.
    Daily,
    /// A message the staff send to many readers.
    Broadcast,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reply => "reply",
            Kind::Daily => "daily",
            Kind::Broadcast => "broadcast",
        }
    }
}

/// How a send reached LINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// With the reply token of the event it answers.
    Reply,
    /// A push to one reader, with its retry key.
    Push,
    /// A multicast to a batch of readers, with its retry key.
    Multicast,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Reply => "reply",
            Via::Push => "push",
            Via::Multicast => "multicast",
        }
    }
}

/// Serialises messages for the record.
pub(super) fn messages_json(messages: &[Message]) -> Result<String, StoreError> {
    serde_json::to_string(messages)
        .map_err(|e| StoreError::Corrupt(crate::telemetry::json_error(&e)))
}

/// Reads recorded messages back.
pub(super) fn read_messages(json: &str) -> Result<Vec<Message>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(crate::telemetry::json_error(&e)))
}

/// Takes the lease on a pending send nobody holds and counts the attempt; false if another
/// holds it or it is settled.
pub fn claim(
    conn: &Connection,
    id: i64,
    now_ms: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE sends SET lease_until = ?3, attempts = attempts + 1,
               first_attempt_ms = COALESCE(first_attempt_ms, ?2)
             WHERE id = ?1 AND status = 'pending' AND lease_until < ?2",
        )?
        .execute(params![id, now_ms, lease_until])?;
    Ok(n == 1)
}

/// Voids every claim on the pending sends of a kind: called by the one process that sends that
/// kind, so claims left by a process that stopped mid-send do not hold them back.
pub fn release_claims(conn: &Connection, kind: Kind) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE sends SET lease_until = 0 WHERE kind = ?1 AND status = 'pending' AND lease_until > 0",
        )?
        .execute([kind.as_str()])?)
}

/// How a claimed send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// LINE has it.
    Sent {
        /// How it went.
        via: Via,
        /// `x-line-request-id`.
        request_id: Option<String>,
    },
    /// Never sent: refused for good, or given up.
    Failed(String),
    /// Deliberately not sent (the per-reader limit, the reserved quota, a reader who left).
    Dropped(String),
    /// Tried, not delivered: released, due again at `next_attempt_ms` (wall clock).
    Later {
        /// Why.
        error: String,
        /// When to try again.
        next_attempt_ms: i64,
        /// LINE never took the reply (no connection, 429): its token is not spent, so the
        /// counted reply attempt is taken back.
        token_unspent: bool,
    },
    /// Claimed but never given to LINE (LINE refuses everything now, the run stopped): released
    /// as if never claimed, so it neither counts as a try nor starts the 23-hour clock.
    Released {
        /// Why, when worth recording.
        error: Option<String>,
        /// The claim counted a reply attempt, to be taken back.
        as_reply: bool,
        /// When to look again.
        next_attempt_ms: i64,
    },
}

/// Records the outcome of a claimed send. Only `Sent` may settle a send that is no longer
/// pending; every other outcome applies to a pending send only, so a late outcome (of a lease
/// that expired while another attempt delivered it) never overwrites `sent`. The messages and
/// the reply token are not kept once the send is settled. A daily push that ends failed or
/// dropped gives back the notices it took, so the reader gets them on a later day inside their
/// window.
pub fn finish(conn: &Connection, id: i64, finish: &Finish, now: &str) -> Result<(), StoreError> {
    match finish {
        Finish::Sent { via, request_id } => {
            conn.prepare_cached(
                "UPDATE sends SET status = 'sent', via = ?2, line_request_id = ?3, error = NULL,
                   sent_at = ?4, lease_until = 0, messages = '[]', reply_token = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, via.as_str(), request_id, now])?;
        }
        Finish::Failed(e) | Finish::Dropped(e) => {
            let status = if matches!(finish, Finish::Failed(_)) {
                "failed"
            } else {
                "dropped"
            };
            let n = conn
                .prepare_cached(
                    "UPDATE sends SET status = ?2, error = ?3, lease_until = 0, messages = '[]',
                       reply_token = NULL
                     WHERE id = ?1 AND status = 'pending'",
                )?
                .execute(params![id, status, e])?;
            if n == 1 {
                release_notices(conn, id)?;
            }
        }
        Finish::Later {
            error,
            next_attempt_ms,
            token_unspent,
        } => {
            conn.prepare_cached(
                "UPDATE sends SET error = ?2, lease_until = 0, next_attempt_ms = ?3,
                   reply_attempts = max(reply_attempts - ?4, 0)
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![
                id,
                error,
                next_attempt_ms,
                i64::from(*token_unspent)
            ])?;
        }
        Finish::Released {
            error,
            as_reply,
            next_attempt_ms,
        } => {
            conn.prepare_cached(
                "UPDATE sends SET lease_until = 0, next_attempt_ms = ?3, error = COALESCE(?4, error),
                   attempts = max(attempts - 1, 0),
                   first_attempt_ms = CASE WHEN attempts <= 1 THEN NULL ELSE first_attempt_ms END,
                   reply_attempts = max(reply_attempts - ?2, 0)
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, i64::from(*as_reply), next_attempt_ms, error])?;
        }
    }
    Ok(())
}

/// Gives back the notices a daily push took, once it has ended failed or dropped (never a
/// notice another push has taken since).
fn release_notices(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM registration_notices
         WHERE send_id = ?1
           AND (registration_id, notice_id) IN (
               SELECT registration_id, substr(content_id, 8) FROM send_items
               WHERE send_id = ?1 AND content_id LIKE 'notice/%')",
    )?
    .execute([id])?;
    Ok(())
}

/// A multicast batch to record.
#[derive(Debug, Clone, Copy)]
pub struct NewMulticast<'a> {
    /// What it is for.
    pub kind: Kind,
    /// Its recipients (1–500; LINE's limit per multicast request).
    pub recipients: &'a [UserId],
    /// The messages (1–5).
    pub messages: &'a [Message],
    /// Its retry key.
    pub retry_key: &'a str,
    /// The broadcast it is a batch of.
    pub broadcast: Option<i64>,
}

/// LINE's limit of recipients per multicast request.
pub const MULTICAST_MAX: usize = 500;

/// Records a multicast batch with its recipients, before the request; returns its id.
pub fn record_multicast(
    conn: &Connection,
    batch: NewMulticast<'_>,
    now: &str,
) -> Result<i64, StoreError> {
    if batch.recipients.is_empty() || batch.recipients.len() > MULTICAST_MAX {
        return Err(StoreError::Corrupt(format!(
            "a multicast batch holds 1 to {MULTICAST_MAX} recipients, not {}",
            batch.recipients.len()
        )));
    }
    conn.prepare_cached(
        "INSERT INTO sends (kind, messages, retry_key, created_at, broadcast_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        batch.kind.as_str(),
        messages_json(batch.messages)?,
        batch.retry_key,
        now,
        batch.broadcast
    ])?;
    let id = conn.last_insert_rowid();
    let mut add = conn.prepare_cached(
        "INSERT OR IGNORE INTO send_recipients (send_id, user_id) VALUES (?1, ?2)",
    )?;
    for user in batch.recipients {
        add.execute(params![id, user])?;
    }
    Ok(id)
}

/// A recorded multicast batch: its recipients' LINE ids (readers erased since are gone from
/// it), messages and key.
#[derive(Debug, Clone)]
pub struct Multicast {
    /// LINE user ids.
    pub to: Vec<String>,
    /// The messages.
    pub messages: Vec<Message>,
    /// Its retry key.
    pub retry_key: String,
}

/// Reads a multicast batch back for sending.
pub fn multicast(conn: &Connection, id: i64) -> Result<Multicast, StoreError> {
    let (messages, retry_key): (Option<String>, String) = conn
        .prepare_cached("SELECT messages, retry_key FROM sends WHERE id = ?1 AND user_id IS NULL")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            e => e.into(),
        })?;
    let to = conn
        .prepare_cached(
            "SELECT u.line_user_id FROM send_recipients r JOIN line_users u ON u.id = r.user_id
             WHERE r.send_id = ?1 ORDER BY u.id",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Multicast {
        to,
        messages: read_messages(messages.as_deref().unwrap_or("[]"))?,
        retry_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::connect(&dir.path().join("t.db")).unwrap();
        crate::store::migrate(&mut conn).unwrap();
        for i in 1..=3 {
            conn.execute(
                "INSERT INTO line_users (id, line_user_id, created_at, updated_at) VALUES (?1, ?2, 'now', 'now')",
                params![i, format!("U{i:032x}")],
            )
            .unwrap();
        }
        (dir, conn)
    }

    fn status(conn: &Connection, id: i64) -> (String, i64, Option<i64>, String) {
        conn.query_row(
            "SELECT status, attempts, first_attempt_ms, messages FROM sends WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_multicast_batch_is_recorded_with_its_recipients_and_claimed_once() {
        let (_dir, conn) = db();
        let users = [UserId::new(1), UserId::new(3)];
        let messages = [Message::text("お知らせです")];
        let id = record_multicast(
            &conn,
            NewMulticast {
                kind: Kind::Broadcast,
                recipients: &users,
                messages: &messages,
                retry_key: "k1",
                broadcast: None,
            },
            "now",
        )
        .unwrap();
        let batch = multicast(&conn, id).unwrap();
        assert_eq!(
            batch.to,
            vec![format!("U{:032x}", 1), format!("U{:032x}", 3)]
        );
        assert_eq!(batch.messages, messages.to_vec());
        assert_eq!(batch.retry_key, "k1");

        assert!(claim(&conn, id, 1_000, 5_000).unwrap());
        assert!(!claim(&conn, id, 2_000, 6_000).unwrap(), "held until 5,000");
        assert_eq!(status(&conn, id).2, Some(1_000));
        finish(
            &conn,
            id,
            &Finish::Sent {
                via: Via::Multicast,
                request_id: None,
            },
            "now",
        )
        .unwrap();
        assert!(!claim(&conn, id, 9_000, 10_000).unwrap(), "settled");
        assert_eq!(status(&conn, id).3, "[]", "messages are not kept once sent");

        // An erased reader leaves the batch.
        conn.execute("DELETE FROM line_users WHERE id = 3", [])
            .unwrap();
        assert_eq!(multicast(&conn, id).unwrap().to.len(), 1);
    }

    #[test]
    fn a_batch_holds_one_to_five_hundred_readers() {
        let (_dir, conn) = db();
        let batch = |recipients: &[UserId]| {
            record_multicast(
                &conn,
                NewMulticast {
                    kind: Kind::Broadcast,
                    recipients,
                    messages: &[Message::text("x")],
                    retry_key: &format!("k{}", recipients.len()),
                    broadcast: None,
                },
                "now",
            )
        };
        assert!(batch(&[]).is_err());
        assert!(batch(&vec![UserId::new(1); MULTICAST_MAX + 1]).is_err());
        assert!(batch(&vec![UserId::new(1); MULTICAST_MAX]).is_ok());
    }

    #[test]
    fn a_late_outcome_never_overwrites_sent_and_a_release_is_not_a_try() {
        let (_dir, conn) = db();
        let id = record_multicast(
            &conn,
            NewMulticast {
                kind: Kind::Broadcast,
                recipients: &[UserId::new(2)],
                messages: &[Message::text("x")],
                retry_key: "k",
                broadcast: None,
            },
            "now",
        )
        .unwrap();
        assert!(claim(&conn, id, 1_000, 2_000).unwrap());
        let released = Finish::Released {
            error: Some("not sent".into()),
            as_reply: false,
            next_attempt_ms: 0,
        };
        finish(&conn, id, &released, "now").unwrap();
        let (s, attempts, first, _) = status(&conn, id);
        assert_eq!((s.as_str(), attempts, first), ("pending", 0, None));

        assert!(claim(&conn, id, 3_000, 4_000).unwrap());
        let sent = Finish::Sent {
            via: Via::Multicast,
            request_id: Some("r".into()),
        };
        finish(&conn, id, &sent, "now").unwrap();
        for late in [
            Finish::Failed("late".into()),
            Finish::Dropped("late".into()),
            Finish::Later {
                error: "late".into(),
                next_attempt_ms: 9,
                token_unspent: true,
            },
            released,
        ] {
            finish(&conn, id, &late, "now").unwrap();
            let (s, attempts, first, _) = status(&conn, id);
            assert_eq!(
                (s.as_str(), attempts, first),
                ("sent", 1, Some(3_000)),
                "{late:?}"
            );
        }
    }
}
