-- Core: LINE users, registrations with status history, conversation state, the webhook inbox
-- and the reply outbox.

CREATE TABLE line_users (
    id            INTEGER PRIMARY KEY,
    line_user_id  TEXT NOT NULL UNIQUE,
    following     INTEGER NOT NULL DEFAULT 1,   -- 0 once the reader blocked the account
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- One in-progress conversation per user (JSON state), so a restart continues where it was.
CREATE TABLE conversations (
    user_id     INTEGER PRIMARY KEY REFERENCES line_users(id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- A pregnancy or a child followed by a reader. One user may hold several (twins, siblings).
CREATE TABLE registrations (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES line_users(id) ON DELETE CASCADE,
    stage       TEXT NOT NULL CHECK (stage IN ('pregnancy', 'child')),
    nickname    TEXT NOT NULL,
    due_date    TEXT,              -- YYYY-MM-DD, for stage = pregnancy
    birthday    TEXT,              -- YYYY-MM-DD, for stage = child
    status      TEXT NOT NULL CHECK (status IN ('active', 'completed', 'stopped', 'blocked')),
    started_on  TEXT NOT NULL,     -- Asia/Tokyo date the current delivery run began
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CHECK ((stage = 'pregnancy' AND due_date IS NOT NULL) OR (stage = 'child' AND birthday IS NOT NULL))
);
CREATE INDEX registrations_user ON registrations(user_id);
CREATE INDEX registrations_status ON registrations(status);

-- Who reads a registration: the owner now; family members later.
CREATE TABLE registration_readers (
    registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    user_id          INTEGER NOT NULL REFERENCES line_users(id) ON DELETE CASCADE,
    role             TEXT NOT NULL CHECK (role IN ('owner', 'family')),
    added_at         TEXT NOT NULL,
    PRIMARY KEY (registration_id, user_id)
);
CREATE INDEX registration_readers_user ON registration_readers(user_id);

-- Every status change with its time: block and stop rates are computed from this.
CREATE TABLE registration_status_history (
    id               INTEGER PRIMARY KEY,
    registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    from_status      TEXT,
    to_status        TEXT NOT NULL,
    reason           TEXT NOT NULL,
    changed_at       TEXT NOT NULL
);
CREATE INDEX registration_status_history_reg ON registration_status_history(registration_id, id);

-- Every webhook event, stored before the 200 and processed after. The unique
-- webhook_event_id makes a redelivered event a no-op.
CREATE TABLE webhook_events (
    id                INTEGER PRIMARY KEY,
    webhook_event_id  TEXT NOT NULL UNIQUE,
    event_type        TEXT NOT NULL,
    line_user_id      TEXT,
    event_timestamp   INTEGER NOT NULL,
    redelivery        INTEGER NOT NULL DEFAULT 0,
    body              TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    processed_at      TEXT,
    outcome           TEXT
);
CREATE INDEX webhook_events_pending ON webhook_events(line_user_id, event_timestamp, id)
    WHERE processed_at IS NULL;

-- Replies and conversation pushes, written in the same transaction as the state change that
-- causes them and sent afterwards.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES line_users(id) ON DELETE CASCADE,
    reply_token  TEXT,
    messages     TEXT NOT NULL,           -- JSON array of message objects
    retry_key    TEXT NOT NULL UNIQUE,    -- X-Line-Retry-Key when sent as a push
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'dropped')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    request_id   TEXT,
    error        TEXT,
    created_at   TEXT NOT NULL,
    sent_at      TEXT
);
CREATE INDEX outbox_pending ON outbox(id) WHERE status = 'pending';

-- Each LINE user's place in the funnel, for staff: registering (followed, no registration yet),
-- registered, or blocked.
CREATE VIEW reader_status AS
SELECT u.id AS user_id,
       CASE
           WHEN u.following = 0 THEN 'blocked'
           WHEN EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = u.id) THEN 'registered'
           ELSE 'registering'
       END AS status,
       u.created_at
FROM line_users u;
