-- The send engine: retry keys unique per installation, and replies claimed one by one.

-- A random id made once, with the database: part of every derived X-Line-Retry-Key, so two
-- databases on one channel (a staging copy, a reinstall, a second instance) never produce the
-- same key, while a database restored from a backup keeps its id and dedupes correctly.
CREATE TABLE installation (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    installation_id  TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
INSERT INTO installation (id, installation_id, created_at)
VALUES (1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Replies: a row is claimed (leased) before it is sent; the reply attempts made with its token
-- tell a refused token after an unknown outcome (delivered) from one refused at once (expired).
ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;     -- unix ms (wall clock)
ALTER TABLE outbox ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0; -- unix ms: not before
ALTER TABLE outbox ADD COLUMN reply_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN via TEXT;                                    -- 'reply' or 'push' once sent

-- Each reader's pending replies in order (the sender keeps a reader's answers in sequence), and
-- the replies queued for a reader in the last minute (the per-reader limit).
CREATE INDEX outbox_pending_user ON outbox(user_id, id) WHERE status = 'pending';
CREATE INDEX outbox_user_created ON outbox(user_id, created_at);

-- The processor takes readers in the order their events arrived (a reader whose LINE id sorts
-- late does not wait behind everyone else in a backlog).
CREATE INDEX webhook_events_pending_arrival ON webhook_events(id) WHERE processed_at IS NULL;
