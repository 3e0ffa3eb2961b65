-- Process leases: one row per job that only one process may run at a time (the public
-- `serve`, the daily delivery runner). A holder renews its lease while it runs; a lease whose
-- expiry (wall-clock unix ms) has passed belongs to nobody, so a crashed process is taken over.

CREATE TABLE process_leases (
    name         TEXT PRIMARY KEY,   -- the job, e.g. "serve"
    holder       TEXT NOT NULL,      -- a random id of the holding process instance
    pid          INTEGER,            -- for messages: who holds it
    host         TEXT,
    acquired_at  TEXT,               -- RFC 3339 UTC, wall clock
    expires_ms   INTEGER NOT NULL    -- unix ms, wall clock
);
