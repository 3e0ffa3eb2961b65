-- Rich menus: what `yorisoi richmenu sync` created on LINE, and the menu each reader has.

-- Every rich menu yorisoi created on LINE. `current`: the one its definition (name) stands for
-- now; a row neither current nor deleted is left over (replaced, no longer defined, or its sync
-- stopped half-way) and the next sync deletes it on LINE. created_at and deleted_at (by 'sync')
-- count LINE's 100 creations and deletions an hour.
CREATE TABLE richmenus (
    rich_menu_id    TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    hash            TEXT NOT NULL,   -- SHA-256 of the definition as sent and of the image
    image_uploaded  INTEGER NOT NULL DEFAULT 0,
    current         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    deleted_at      TEXT,
    -- 'sync': deleted on LINE by a sync (it counts against the hour); 'line': LINE no longer had it
    deleted_by      TEXT CHECK (deleted_by IN ('sync', 'line'))
);
CREATE UNIQUE INDEX richmenus_current ON richmenus(name) WHERE current = 1;

-- The menu LINE shows each reader: `linked_menu` is the rich menu id linked to them (NULL: no
-- per-user link, so the default menu); `dirty` marks a reader whose stage may have changed (the
-- triggers below), for the relinker to look at; `retry_after` holds a reader back after LINE
-- failed (5xx, 429).
CREATE TABLE richmenu_links (
    user_id      INTEGER PRIMARY KEY REFERENCES line_users(id) ON DELETE CASCADE,
    linked_menu  TEXT,
    dirty        INTEGER NOT NULL DEFAULT 1,
    retry_after  TEXT,
    linked_at    TEXT
);
CREATE INDEX richmenu_links_dirty ON richmenu_links(user_id) WHERE dirty = 1;

-- What decides a reader's stage: a registration's status, stage or closing; being a reader of it,
-- and pausing it; following the account. The EXISTS guards skip a reader whose line_users row
-- is going (an erasure cascades through registration_readers).
CREATE TRIGGER richmenu_registration_changed
AFTER UPDATE OF status, stage, closed ON registrations
BEGIN
    INSERT INTO richmenu_links (user_id)
        SELECT rr.user_id FROM registration_readers rr
        WHERE rr.registration_id = NEW.id
          AND EXISTS (SELECT 1 FROM line_users u WHERE u.id = rr.user_id)
        ON CONFLICT (user_id) DO UPDATE SET dirty = 1;
END;

CREATE TRIGGER richmenu_reader_added
AFTER INSERT ON registration_readers
BEGIN
    INSERT INTO richmenu_links (user_id)
        SELECT NEW.user_id WHERE EXISTS (SELECT 1 FROM line_users u WHERE u.id = NEW.user_id)
        ON CONFLICT (user_id) DO UPDATE SET dirty = 1;
END;

CREATE TRIGGER richmenu_reader_removed
AFTER DELETE ON registration_readers
BEGIN
    INSERT INTO richmenu_links (user_id)
        SELECT OLD.user_id WHERE EXISTS (SELECT 1 FROM line_users u WHERE u.id = OLD.user_id)
        ON CONFLICT (user_id) DO UPDATE SET dirty = 1;
END;

CREATE TRIGGER richmenu_reader_paused
AFTER UPDATE OF paused ON registration_readers
BEGIN
    INSERT INTO richmenu_links (user_id)
        SELECT NEW.user_id WHERE EXISTS (SELECT 1 FROM line_users u WHERE u.id = NEW.user_id)
        ON CONFLICT (user_id) DO UPDATE SET dirty = 1;
END;

CREATE TRIGGER richmenu_following_changed
AFTER UPDATE OF following ON line_users
BEGIN
    INSERT INTO richmenu_links (user_id) VALUES (NEW.id)
        ON CONFLICT (user_id) DO UPDATE SET dirty = 1;
END;
