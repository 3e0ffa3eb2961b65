-- Life events: the birth (a pregnancy registration becomes its child's, the same row), a loss
-- (closed for good, counted apart from ordinary stops), children told apart by name, and
-- family members reading a registration with their own name and their own pause.

-- How the family tells its children apart in pushes that group them (「はるちゃん」「上の子」).
-- Optional: asked when a second registration is added.
ALTER TABLE registrations ADD COLUMN child_name TEXT;

-- 'loss' once a family told us they lost the pregnancy or the child: the registration is
-- stopped and is never resumed, unblocked into delivery, or sent a message again.
ALTER TABLE registrations ADD COLUMN closed TEXT CHECK (closed IN ('loss'));

-- A family reader's own name (the owner's is registrations.nickname).
ALTER TABLE registration_readers ADD COLUMN nickname TEXT;

-- 1 when this reader stopped their own delivery of the registration (a family member's stop
-- stops only theirs; the owner's stop is the registration's status).
ALTER TABLE registration_readers ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;

-- Invitations to read registrations: the code is shown once to the owner; only its hash is
-- kept, one row per registration it shares (twins: one code, two rows). One use, within its
-- expiry.
CREATE TABLE invitations (
    id               INTEGER PRIMARY KEY,
    registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    code_hash        TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    used_by          INTEGER REFERENCES line_users(id) ON DELETE SET NULL,
    used_at          TEXT
);
CREATE INDEX invitations_registration ON invitations(registration_id);
CREATE INDEX invitations_code ON invitations(code_hash);

-- The birth moves a registration from the pregnancy counters to the child's, in the status it
-- has, and is counted itself.
CREATE TRIGGER daily_counts_born AFTER UPDATE OF stage ON registrations
WHEN OLD.stage = 'pregnancy' AND NEW.stage = 'child'
BEGIN
    INSERT INTO daily_counts (day, metric, count)
    VALUES (date(NEW.updated_at, '+9 hours'), 'from:' || NEW.status || ':pregnancy', 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
    INSERT INTO daily_counts (day, metric, count)
    VALUES (date(NEW.updated_at, '+9 hours'), 'to:' || NEW.status || ':child', 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
    INSERT INTO daily_counts (day, metric, count)
    VALUES (date(NEW.updated_at, '+9 hours'), 'born', 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
END;

-- A loss, counted by stage, apart from ordinary stops, with no link to anyone.
CREATE TRIGGER daily_counts_loss AFTER UPDATE OF closed ON registrations
WHEN OLD.closed IS NULL AND NEW.closed = 'loss'
BEGIN
    INSERT INTO daily_counts (day, metric, count)
    VALUES (date(NEW.updated_at, '+9 hours'), 'loss:' || NEW.stage, 1)
    ON CONFLICT (day, metric) DO UPDATE SET count = count + 1;
END;
