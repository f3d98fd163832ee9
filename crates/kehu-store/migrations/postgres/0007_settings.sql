-- Server settings that must outlive a restart and be the same on every instance, e.g. the
-- web app's tracker key (only its digest is in app_keys, so the key itself is kept here).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
