-- The staff console: staff accounts, their sessions and API tokens, the audit log, broadcasts,
-- and anonymous daily counters for the statistics.

CREATE TABLE staff (
    id             INTEGER PRIMARY KEY,
    login          TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'sender', 'viewer')),
    password_hash  TEXT NOT NULL,          -- argon2id, PHC string
    disabled       INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,   -- consecutive failures since the last success
    locked         INTEGER NOT NULL DEFAULT 0,   -- set after repeated failures; an admin unlocks
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- A browser session: the cookie carries a random value; only its SHA-256 is stored.
CREATE TABLE staff_sessions (
    token_hash    TEXT PRIMARY KEY,
    staff_id      INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    csrf          TEXT NOT NULL,           -- the form token of this session
    created_ms    INTEGER NOT NULL,        -- unix ms (wall clock)
    last_seen_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX staff_sessions_staff ON staff_sessions(staff_id);

-- API tokens for automation: shown once, stored as SHA-256.
CREATE TABLE staff_tokens (
    id            INTEGER PRIMARY KEY,
    staff_id      INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);

-- Every staff action. `staff_id` is NULL for a failed login of an unknown account.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    staff_id  INTEGER REFERENCES staff(id),
    login     TEXT NOT NULL,              -- the account's login (as typed, for a failed login)
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_action ON audit_log(action, id);
CREATE INDEX audit_log_staff ON audit_log(staff_id, id);

-- A message the staff send to many readers. Its batches are `sends` of kind 'broadcast'.
CREATE TABLE broadcasts (
    id                    INTEGER PRIMARY KEY,
    created_by            INTEGER NOT NULL REFERENCES staff(id),
    created_at            TEXT NOT NULL,
    -- A random UUID its batches' retry keys derive from (with the installation).
    key                   TEXT NOT NULL UNIQUE,
    text                  TEXT NOT NULL,
    image_url             TEXT,
    audience              TEXT NOT NULL,    -- JSON: {"stage": "all"} | pregnancy weeks | child months
    requested_at          TEXT,             -- the time asked for (NULL: now)
    send_at               TEXT NOT NULL,    -- when it goes: requested, or held past quiet hours
    override_quiet_hours  INTEGER NOT NULL DEFAULT 0,
    status                TEXT NOT NULL DEFAULT 'scheduled'
                          CHECK (status IN ('scheduled', 'sending', 'done', 'cancelled')),
    recipients            INTEGER,          -- counted when its batches were recorded
    started_at            TEXT,
    finished_at           TEXT,
    cancelled_by          INTEGER REFERENCES staff(id),
    cancelled_at          TEXT
);
CREATE INDEX broadcasts_due ON broadcasts(send_at) WHERE status IN ('scheduled', 'sending');

-- A broadcast's audience: active registrations by due date or birthday.
CREATE INDEX registrations_active_due ON registrations(due_date)
    WHERE status = 'active' AND stage = 'pregnancy';
CREATE INDEX registrations_active_born ON registrations(birthday)
    WHERE status = 'active' AND stage = 'child';

ALTER TABLE sends ADD COLUMN broadcast_id INTEGER REFERENCES broadcasts(id);
CREATE INDEX sends_broadcast ON sends(broadcast_id, status) WHERE broadcast_id IS NOT NULL;

-- Anonymous counters per Asia/Tokyo day, kept by the triggers below (so no code path can
-- forget them) and never erased with personal data. Metrics:
--   follow, block                       a LINE user added / blocked the account
--   to:<status>:<stage>, from:<status>:<stage>   registrations entering / leaving a status
--   registered:<stage>                 a new registration (also counted in to:active:<stage>)
--   gone:<status>:<stage>               a registration deleted (erasure, retention) in that status
CREATE TABLE daily_counts (
    day     TEXT NOT NULL,
    metric  TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (day, metric)
) WITHOUT ROWID;

CREATE TRIGGER daily_counts_follow AFTER INSERT ON line_users WHEN NEW.following = 1
BEGIN
    INSERT INTO daily_counts (day, metric, count) VALUES (date(NEW.created_at, '+9 hours'), 'follow', 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER daily_counts_following AFTER UPDATE OF following ON line_users
WHEN OLD.following != NEW.following
BEGIN
    INSERT INTO daily_counts (day, metric, count)
    VALUES (date(NEW.updated_at, '+9 hours'), CASE NEW.following WHEN 1 THEN 'follow' ELSE 'block' END, 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER daily_counts_status AFTER INSERT ON registration_status_history
BEGIN
    INSERT INTO daily_counts (day, metric, count)
    SELECT date(NEW.changed_at, '+9 hours'), 'to:' || NEW.to_status || ':' || r.stage, 1
    FROM registrations r WHERE r.id = NEW.registration_id
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
    INSERT INTO daily_counts (day, metric, count)
    SELECT date(NEW.changed_at, '+9 hours'), 'from:' || NEW.from_status || ':' || r.stage, 1
    FROM registrations r WHERE r.id = NEW.registration_id AND NEW.from_status IS NOT NULL
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
    INSERT INTO daily_counts (day, metric, count)
    SELECT date(NEW.changed_at, '+9 hours'), 'registered:' || r.stage, 1
    FROM registrations r WHERE r.id = NEW.registration_id AND NEW.from_status IS NULL
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
END;

-- The code that deletes a registration stamps `updated_at` with its own clock first.
CREATE TRIGGER daily_counts_gone AFTER DELETE ON registrations
BEGIN
    INSERT INTO daily_counts (day, metric, count)
    VALUES (date(OLD.updated_at, '+9 hours'), 'gone:' || OLD.status || ':' || OLD.stage, 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
END;

-- What happened before the counters existed, as far as the data still tells.
INSERT INTO daily_counts (day, metric, count)
SELECT date(created_at, '+9 hours'), 'follow', count(*) FROM line_users GROUP BY 1
ON CONFLICT (day, metric) DO UPDATE SET count = count + excluded.count;
INSERT INTO daily_counts (day, metric, count)
SELECT date(updated_at, '+9 hours'), 'block', count(*) FROM line_users WHERE following = 0 GROUP BY 1
ON CONFLICT (day, metric) DO UPDATE SET count = count + excluded.count;
INSERT INTO daily_counts (day, metric, count)
SELECT date(h.changed_at, '+9 hours'), 'to:' || h.to_status || ':' || r.stage, count(*)
FROM registration_status_history h JOIN registrations r ON r.id = h.registration_id GROUP BY 1, 2
ON CONFLICT (day, metric) DO UPDATE SET count = count + excluded.count;
INSERT INTO daily_counts (day, metric, count)
SELECT date(h.changed_at, '+9 hours'), 'from:' || h.from_status || ':' || r.stage, count(*)
FROM registration_status_history h JOIN registrations r ON r.id = h.registration_id
WHERE h.from_status IS NOT NULL GROUP BY 1, 2
ON CONFLICT (day, metric) DO UPDATE SET count = count + excluded.count;
INSERT INTO daily_counts (day, metric, count)
SELECT date(h.changed_at, '+9 hours'), 'registered:' || r.stage, count(*)
FROM registration_status_history h JOIN registrations r ON r.id = h.registration_id
WHERE h.from_status IS NULL GROUP BY 1, 2
ON CONFLICT (day, metric) DO UPDATE SET count = count + excluded.count;
