-- The staff dashboard's statistics (src/stats/): what it reads instead of counting a million rows.

-- Running totals of LINE users, kept by the triggers below: counting them means scanning every
-- user, and "registering" a lookup of readers for each. Metrics:
--   followers     LINE users following the account now
--   registering   of those, the ones who read no registration yet
CREATE TABLE stats_totals (
    metric  TEXT PRIMARY KEY,
    count   INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO stats_totals (metric, count)
SELECT 'followers', count(*) FROM line_users WHERE following = 1;
INSERT INTO stats_totals (metric, count)
SELECT 'registering', count(*) FROM line_users u
WHERE u.following = 1
  AND NOT EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = u.id);

-- A new user has no reader rows yet (they reference the user).
CREATE TRIGGER stats_totals_user_added AFTER INSERT ON line_users WHEN NEW.following = 1
BEGIN
    UPDATE stats_totals SET count = count + 1 WHERE metric IN ('followers', 'registering');
END;

CREATE TRIGGER stats_totals_following AFTER UPDATE OF following ON line_users
WHEN OLD.following != NEW.following
BEGIN
    UPDATE stats_totals SET count = count + CASE NEW.following WHEN 1 THEN 1 ELSE -1 END
    WHERE metric = 'followers'
       OR (metric = 'registering'
           AND NOT EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = NEW.id));
END;

-- BEFORE: SQLite deletes the user row, then cascades to its reader rows, then runs AFTER
-- triggers, which would no longer see whether the user read anything.
CREATE TRIGGER stats_totals_user_gone BEFORE DELETE ON line_users WHEN OLD.following = 1
BEGIN
    UPDATE stats_totals SET count = count - 1
    WHERE metric = 'followers'
       OR (metric = 'registering'
           AND NOT EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = OLD.id));
END;

-- A following user's first reader row ends their registering.
CREATE TRIGGER stats_totals_reader_added AFTER INSERT ON registration_readers
WHEN (SELECT following FROM line_users WHERE id = NEW.user_id) = 1
 AND NOT EXISTS (SELECT 1 FROM registration_readers rr
                 WHERE rr.user_id = NEW.user_id AND rr.registration_id != NEW.registration_id)
BEGIN
    UPDATE stats_totals SET count = count - 1 WHERE metric = 'registering';
END;

-- A following user's last reader row going makes them registering again. In the cascade of a
-- deleted user the user row is already gone, so nothing is counted twice.
CREATE TRIGGER stats_totals_reader_gone AFTER DELETE ON registration_readers
WHEN (SELECT following FROM line_users WHERE id = OLD.user_id) = 1
 AND NOT EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = OLD.user_id)
BEGIN
    UPDATE stats_totals SET count = count + 1 WHERE metric = 'registering';
END;

-- The stop rate counts registrations that were ever stopped, once each (as `ever_stopped` in
-- anonymised_counts): a few percent of the history, found without reading the rest.
CREATE INDEX registration_status_history_stopped ON registration_status_history(registration_id)
    WHERE to_status = 'stopped';

-- Recent failed sends of every kind, by when they were recorded, with their reason: the
-- dashboard groups them without reading the rows themselves, which lie scattered among
-- millions (a cold cache read each of them from disk).
CREATE INDEX sends_failed ON sends(created_at, error) WHERE status = 'failed';
