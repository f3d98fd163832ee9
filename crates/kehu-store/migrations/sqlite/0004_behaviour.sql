-- Behaviour events, identity links, behaviour state snapshots, risk assessments,
-- suitability checks, purchases and the recommendation decision log (SQLite).
CREATE TABLE app_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- The event log. `seq` orders events as they were acknowledged; times are epoch ms UTC.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    device TEXT,
    customer_id INTEGER,
    -- The identify event that attributed this anonymous event to its customer.
    attributed_seq INTEGER,
    product_id INTEGER,
    dwell_ms INTEGER,
    depth INTEGER,
    quantity INTEGER,
    amount_fen INTEGER,
    detail TEXT
);
CREATE UNIQUE INDEX events_app_event ON events (app_id, event_id);
CREATE INDEX events_customer ON events (customer_id, ts_ms);
CREATE INDEX events_anonymous ON events (device) WHERE customer_id IS NULL;
CREATE INDEX events_attributed ON events (attributed_seq) WHERE attributed_seq IS NOT NULL;

CREATE TABLE device_links (
    device TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    linked_ms INTEGER NOT NULL
);

-- Snapshot of the in-memory behaviour state, covering events up to `watermark`.
CREATE TABLE behaviour_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    watermark INTEGER NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE behaviour_pairs (
    customer_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    views INTEGER NOT NULL,
    dwell_ms INTEGER NOT NULL,
    max_depth INTEGER NOT NULL,
    active_days INTEGER NOT NULL,
    day_bits INTEGER NOT NULL,
    recent INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    interest REAL NOT NULL,
    purchases INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (customer_id, product_id)
) WITHOUT ROWID;
CREATE TABLE behaviour_customers (
    customer_id INTEGER PRIMARY KEY,
    events INTEGER NOT NULL,
    product_views INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    active_days INTEGER NOT NULL,
    day_bits INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE TABLE behaviour_products (
    product_id INTEGER PRIMARY KEY,
    views INTEGER NOT NULL,
    viewers INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    buyers INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL
);

-- Interests a customer deleted ("my tags"): events on these before `deleted_ms` are not used.
CREATE TABLE tag_deletions (
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    tag TEXT NOT NULL,
    deleted_ms INTEGER NOT NULL,
    PRIMARY KEY (customer_id, tag)
);

CREATE TABLE personalization_changes (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    enabled INTEGER NOT NULL,
    changed_at TEXT NOT NULL,
    source TEXT NOT NULL
);

CREATE TABLE risk_assessments (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    questionnaire TEXT NOT NULL,
    answers TEXT NOT NULL,
    score INTEGER NOT NULL,
    level TEXT NOT NULL,
    assessed_on TEXT NOT NULL,
    assessed_at TEXT NOT NULL
);
CREATE INDEX risk_assessments_customer ON risk_assessments (customer_id, id);

CREATE TABLE suitability_checks (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    amount_fen INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    refusal TEXT,
    customer_level TEXT,
    product_level TEXT NOT NULL,
    elderly_rule INTEGER NOT NULL,
    elderly_confirmed INTEGER NOT NULL,
    reason TEXT NOT NULL,
    checked_at TEXT NOT NULL
);
CREATE INDEX suitability_checks_customer ON suitability_checks (customer_id, id);

CREATE TABLE purchases (
    id INTEGER PRIMARY KEY,
    check_id INTEGER NOT NULL REFERENCES suitability_checks (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    purchased_at TEXT NOT NULL
);

CREATE TABLE recommendation_log (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    decided_at TEXT NOT NULL,
    placement TEXT NOT NULL,
    personalized INTEGER NOT NULL,
    model TEXT NOT NULL,
    inputs TEXT NOT NULL,
    items TEXT NOT NULL
);
CREATE INDEX recommendation_log_customer ON recommendation_log (customer_id, id);
