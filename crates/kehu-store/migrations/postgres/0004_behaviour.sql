-- Behaviour events, identity links, behaviour state snapshots, risk assessments,
-- suitability checks, purchases and the recommendation decision log (PostgreSQL).
CREATE TABLE app_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

-- The event log. `seq` orders events as they were acknowledged; times are epoch ms UTC.
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    app_id BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    device TEXT,
    customer_id BIGINT,
    -- The identify event that attributed this anonymous event to its customer.
    attributed_seq BIGINT,
    product_id BIGINT,
    dwell_ms BIGINT,
    depth BIGINT,
    quantity BIGINT,
    amount_fen BIGINT,
    detail TEXT
);
CREATE UNIQUE INDEX events_app_event ON events (app_id, event_id);
CREATE INDEX events_customer ON events (customer_id, ts_ms);
CREATE INDEX events_anonymous ON events (device) WHERE customer_id IS NULL;
CREATE INDEX events_attributed ON events (attributed_seq) WHERE attributed_seq IS NOT NULL;

CREATE TABLE device_links (
    device TEXT PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    linked_ms BIGINT NOT NULL
);

-- Snapshot of the in-memory behaviour state, covering events up to `watermark`.
CREATE TABLE behaviour_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    watermark BIGINT NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE behaviour_pairs (
    customer_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    views BIGINT NOT NULL,
    dwell_ms BIGINT NOT NULL,
    max_depth BIGINT NOT NULL,
    active_days BIGINT NOT NULL,
    day_bits BIGINT NOT NULL,
    recent BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    interest DOUBLE PRECISION NOT NULL,
    purchases BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    PRIMARY KEY (customer_id, product_id)
);
CREATE TABLE behaviour_customers (
    customer_id BIGINT PRIMARY KEY,
    events BIGINT NOT NULL,
    product_views BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    active_days BIGINT NOT NULL,
    day_bits BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE TABLE behaviour_products (
    product_id BIGINT PRIMARY KEY,
    views BIGINT NOT NULL,
    viewers BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    buyers BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL
);

-- Interests a customer deleted ("my tags"): events on these before `deleted_ms` are not used.
CREATE TABLE tag_deletions (
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    tag TEXT NOT NULL,
    deleted_ms BIGINT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);

CREATE TABLE personalization_changes (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    enabled BOOLEAN NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL
);

CREATE TABLE risk_assessments (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    questionnaire TEXT NOT NULL,
    answers TEXT NOT NULL,
    score BIGINT NOT NULL,
    level TEXT NOT NULL,
    assessed_on DATE NOT NULL,
    assessed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX risk_assessments_customer ON risk_assessments (customer_id, id);

CREATE TABLE suitability_checks (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    amount_fen BIGINT NOT NULL,
    allowed BOOLEAN NOT NULL,
    refusal TEXT,
    customer_level TEXT,
    product_level TEXT NOT NULL,
    elderly_rule BOOLEAN NOT NULL,
    elderly_confirmed BOOLEAN NOT NULL,
    reason TEXT NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX suitability_checks_customer ON suitability_checks (customer_id, id);

CREATE TABLE purchases (
    id BIGSERIAL PRIMARY KEY,
    check_id BIGINT NOT NULL REFERENCES suitability_checks (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    quantity BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    purchased_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE recommendation_log (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    placement TEXT NOT NULL,
    personalized BOOLEAN NOT NULL,
    model TEXT NOT NULL,
    inputs TEXT NOT NULL,
    items TEXT NOT NULL
);
CREATE INDEX recommendation_log_customer ON recommendation_log (customer_id, id);
