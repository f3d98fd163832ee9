-- Web workbench: staff logins (argon2id hashes, lock-out counters, language) and
-- server-side sessions (staff or, in demo mode, an app customer). Tokens are stored as
-- SHA-256 digests, so a copy of the database does not hand out live sessions.
CREATE TABLE staff_logins (
    staff_id TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    lang TEXT NOT NULL DEFAULT 'zh-CN',
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    -- 'staff' or 'customer'
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    lang TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
