-- One record for every message to LINE: a *send*. Conversation replies (the old `outbox`),
-- daily pushes (the old `deliveries`) and the staff's broadcasts to come are all recorded here
-- before the request leaves, with their kind, their recipient (one reader, or a multicast
-- batch listed in `send_recipients`), their messages and their X-Line-Retry-Key; claimed under
-- a lease when they leave the queue; their outcome committed as it comes.

CREATE TABLE sends (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('reply', 'daily', 'broadcast')),
    -- The one recipient; NULL for a multicast batch, whose recipients are in send_recipients.
    user_id          INTEGER REFERENCES line_users(id) ON DELETE CASCADE,
    day              TEXT,       -- daily: the Asia/Tokyo date the messages are for
    seq              INTEGER,    -- daily: push number of the day for this reader
    reply_token      TEXT,       -- reply: the token of the event it answers, while usable
    -- JSON array of message objects, emptied ('[]') once the send is settled. NULL only for a
    -- daily push planned before this table existed: it is rendered from its items.
    messages         TEXT,
    retry_key        TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'dropped')),
    lease_until      INTEGER NOT NULL DEFAULT 0,   -- unix ms (wall clock): claimed until then
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,   -- unix ms (wall clock): not tried before
    attempts         INTEGER NOT NULL DEFAULT 0,
    reply_attempts   INTEGER NOT NULL DEFAULT 0,   -- attempts made with the reply token
    first_attempt_ms INTEGER,                      -- unix ms (wall clock) of the first attempt
    via              TEXT CHECK (via IN ('reply', 'push', 'multicast')),   -- once sent
    line_request_id  TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    CHECK (user_id IS NOT NULL OR kind = 'broadcast'),
    CHECK (kind != 'daily' OR (day IS NOT NULL AND seq IS NOT NULL))
);
-- Per reader (erasure's cascade, the per-reader reply limit).
CREATE INDEX sends_user ON sends(user_id, created_at);
-- A reader's pushes of a day, once each; a day's pushes by status.
CREATE UNIQUE INDEX sends_daily ON sends(user_id, day, seq) WHERE kind = 'daily';
CREATE INDEX sends_daily_by_day ON sends(day, status, id) WHERE kind = 'daily';
-- The reply queue, and each reader's pending replies in order.
CREATE INDEX sends_replies_pending ON sends(user_id, id) WHERE kind = 'reply' AND status = 'pending';
CREATE INDEX sends_replies_queue ON sends(id) WHERE kind = 'reply' AND status = 'pending';
-- Settled replies, dropped after their keeping time.
CREATE INDEX sends_replies_settled ON sends(created_at) WHERE kind = 'reply' AND status != 'pending';

-- The recipients of a multicast batch (at most 500).
CREATE TABLE send_recipients (
    send_id  INTEGER NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES line_users(id) ON DELETE CASCADE,
    PRIMARY KEY (send_id, user_id)
) WITHOUT ROWID;
CREATE INDEX send_recipients_user ON send_recipients(user_id);

-- What each daily push carried: for audits, statistics and the staff console.
CREATE TABLE send_items (
    send_id          INTEGER NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,   -- message object number within the push
    registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    content_id       TEXT NOT NULL,      -- e.g. "pregnancy/25w5d", "notice/checkup-4m"
    PRIMARY KEY (send_id, position, registration_id)  -- a shared notice lists every twin
);
CREATE INDEX send_items_registration ON send_items(registration_id, content_id);

-- Daily pushes keep their ids (registration_notices names them); 'planned' is now 'pending'
-- and 'skipped' (the reader left before it went) 'dropped'.
INSERT INTO sends (id, kind, user_id, day, seq, messages, retry_key, status, lease_until,
                   attempts, first_attempt_ms, via, line_request_id, error, created_at, sent_at)
SELECT id, 'daily', user_id, delivery_date, seq,
       CASE WHEN status = 'planned' THEN NULL ELSE '[]' END,
       retry_key,
       CASE status WHEN 'planned' THEN 'pending' WHEN 'skipped' THEN 'dropped' ELSE status END,
       lease_until, attempts, first_attempt_ms,
       CASE WHEN status = 'sent' THEN 'push' END,
       line_request_id, error, planned_at, sent_at
FROM deliveries ORDER BY id;

INSERT INTO send_items (send_id, position, registration_id, content_id)
SELECT delivery_id, position, registration_id, content_id FROM delivery_items;

-- Replies follow, in their order.
INSERT INTO sends (kind, user_id, reply_token, messages, retry_key, status, lease_until,
                   next_attempt_ms, attempts, reply_attempts, via, line_request_id, error,
                   created_at, sent_at)
SELECT 'reply', user_id, reply_token, messages, retry_key, status, lease_until,
       next_attempt_ms, attempts, reply_attempts, via, request_id, error, created_at, sent_at
FROM outbox ORDER BY id;

DROP TABLE delivery_items;
DROP TABLE deliveries;
DROP TABLE outbox;

-- The push that took a notice is a send now.
ALTER TABLE registration_notices RENAME COLUMN delivery_id TO send_id;
