-- Which notices a registration has taken, one row each (it replaces the comma-separated
-- `registrations.notices_sent`, read as a 128-bit mask: notices past the 128th were resent).
-- A notice is taken as soon as it is recorded in a planned push, so catch-up days and retries
-- never plan it twice; the row goes again if that push ends failed or skipped, so the reader
-- still gets it on a later day inside its window; a sent push keeps it.
-- Planning reads only the rows whose window is still open (`open_until`): a registration keeps
-- every notice it has received, but only the one or two of today matter.
CREATE TABLE registration_notices (
    registration_id  INTEGER NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    notice_id        TEXT NOT NULL,      -- the notice's id in the content pack (without `notice/`)
    -- The push that took it (deliveries.id); NULL when copied from the old list with no push
    -- found. Not a foreign key: it is only compared with the push being finished, and a
    -- foreign key would need a second index on this large table for every deleted push.
    delivery_id      INTEGER,
    taken_at         TEXT,               -- when that push was planned; NULL when not known
    -- The last date (Asia/Tokyo) the notice's window is open for this registration, from its
    -- due date or birthday when taken; '9999-12-31' when not known (copied from the old list).
    -- A change of due date or birthday must recompute it (or set it to '9999-12-31').
    open_until       TEXT NOT NULL,
    PRIMARY KEY (registration_id, notice_id)
) WITHOUT ROWID;
CREATE INDEX registration_notices_open ON registration_notices(open_until);

-- The old lists, split with a recursive CTE; the push that delivered each, where recorded.
WITH RECURSIVE split(registration_id, notice_id, rest) AS (
    SELECT id, '', notices_sent || ',' FROM registrations WHERE notices_sent != ''
    UNION ALL
    SELECT registration_id,
           substr(rest, 1, instr(rest, ',') - 1),
           substr(rest, instr(rest, ',') + 1)
    FROM split WHERE rest != ''
)
INSERT OR IGNORE INTO registration_notices (registration_id, notice_id, delivery_id, taken_at, open_until)
SELECT s.registration_id, s.notice_id, d.id, d.planned_at, '9999-12-31'
FROM split s
LEFT JOIN deliveries d ON d.id = (
    SELECT i.delivery_id FROM delivery_items i JOIN deliveries x ON x.id = i.delivery_id
    WHERE i.registration_id = s.registration_id AND i.content_id = 'notice/' || s.notice_id
      AND x.status = 'sent'
    ORDER BY i.delivery_id LIMIT 1
)
WHERE s.notice_id != '';

-- Pushes recorded but not sent yet hold their notices too.
INSERT OR IGNORE INTO registration_notices (registration_id, notice_id, delivery_id, taken_at, open_until)
SELECT i.registration_id, substr(i.content_id, 8), d.id, d.planned_at, '9999-12-31'
FROM deliveries d JOIN delivery_items i ON i.delivery_id = d.id
WHERE d.status = 'planned' AND i.content_id LIKE 'notice/%';

-- `registrations.notices_sent` is left in place, no longer read nor written: dropping a column
-- rewrites the whole table for no gain.
