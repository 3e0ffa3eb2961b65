-- Daily delivery: every planned push is recorded before it is sent, with a deterministic
-- X-Line-Retry-Key, so a crash and a rerun can never send twice nor lose a message.

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES line_users(id) ON DELETE CASCADE,
    delivery_date    TEXT NOT NULL,      -- Asia/Tokyo date the messages are for
    seq              INTEGER NOT NULL,   -- push number of the day for this user (5 objects each)
    retry_key        TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'planned'
                     CHECK (status IN ('planned', 'sent', 'failed', 'skipped')),
    lease_until      INTEGER NOT NULL DEFAULT 0,   -- unix ms (wall clock): a run is sending it until then
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_ms INTEGER,                      -- unix ms (wall clock) of the first send attempt
    line_request_id  TEXT,
    error            TEXT,
    planned_at       TEXT NOT NULL,
    sent_at          TEXT,
    UNIQUE (user_id, delivery_date, seq)
);
CREATE INDEX deliveries_by_date ON deliveries(delivery_date, status, id);

-- What each push carried: for audits, statistics and the staff console.
CREATE TABLE delivery_items (
    delivery_id      INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,   -- message object number within the push
    registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    content_id       TEXT NOT NULL,      -- e.g. "pregnancy/25w5d", "notice/checkup-4m"
    PRIMARY KEY (delivery_id, position, registration_id)  -- a shared notice lists every twin
);
CREATE INDEX delivery_items_registration ON delivery_items(registration_id, content_id);

-- One row per delivery date once a run has gone through it to the end.
CREATE TABLE delivery_runs (
    delivery_date  TEXT PRIMARY KEY,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    planned        INTEGER NOT NULL DEFAULT 0,
    sent           INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0
);

-- The age-window notices each registration has received (comma-separated ids), so a notice is
-- delivered once: on the first delivered day inside its window, whenever the reader joined.
ALTER TABLE registrations ADD COLUMN notices_sent TEXT NOT NULL DEFAULT '';
