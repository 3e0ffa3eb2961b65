-- Retention and erasure: what is left of a reader once their personal data is gone.
-- Anonymous counts only (no user id, nickname or day-precise date), enough for the staff
-- console's statistics: registrations per stage and month, block and stop rates, completions.
-- Live statistics add these counts to what the other tables still hold.
CREATE TABLE anonymised_counts (
    -- 'none': a LINE user who never completed a registration.
    stage             TEXT NOT NULL CHECK (stage IN ('pregnancy', 'child', 'none')),
    -- YYYY-MM (Asia/Tokyo) the registration was made (for 'none': the account was added).
    registered_month  TEXT NOT NULL,
    -- YYYY-MM (Asia/Tokyo) it ended: blocked, completed, or erased on request.
    ended_month       TEXT NOT NULL,
    -- The status when the personal data went ('registering': followed, never registered).
    final_status      TEXT NOT NULL
                      CHECK (final_status IN ('active', 'completed', 'stopped', 'blocked', 'registering')),
    -- 1 when the reader stopped the delivery at some point (stop rate).
    ever_stopped      INTEGER NOT NULL CHECK (ever_stopped IN (0, 1)),
    -- 'retention': the period after the end passed; 'erasure': erased on request.
    cause             TEXT NOT NULL CHECK (cause IN ('retention', 'erasure')),
    count             INTEGER NOT NULL CHECK (count > 0),
    PRIMARY KEY (stage, registered_month, ended_month, final_status, ever_stopped, cause)
) WITHOUT ROWID;

-- Erasure and retention find a reader's webhook events by their LINE user id.
CREATE INDEX webhook_events_user ON webhook_events(line_user_id);
