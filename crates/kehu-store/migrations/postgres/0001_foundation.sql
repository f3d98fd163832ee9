-- kehu foundation schema (PostgreSQL). Money is integer fen (BIGINT); times are timestamptz.
CREATE TABLE import_runs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status TEXT NOT NULL DEFAULT 'running',
    rows_read BIGINT NOT NULL DEFAULT 0,
    rows_loaded BIGINT NOT NULL DEFAULT 0,
    rows_rejected BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE staff (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    branch TEXT,
    import_run BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE customers (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    gender TEXT NOT NULL,
    birth_date DATE,
    phone TEXT,
    phone_last4 TEXT,
    id_number TEXT,
    income_band TEXT,
    occupation TEXT,
    branch TEXT,
    manager_id TEXT,
    vip_tier TEXT NOT NULL,
    consent_sms BOOLEAN NOT NULL,
    consent_push BOOLEAN NOT NULL,
    consent_call BOOLEAN NOT NULL,
    personalization BOOLEAN NOT NULL,
    import_run BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX customers_name ON customers (name);
CREATE INDEX customers_phone_last4 ON customers (phone_last4);
CREATE INDEX customers_manager ON customers (manager_id);

CREATE TABLE products (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    risk_level TEXT NOT NULL,
    min_purchase_fen BIGINT NOT NULL,
    term_days BIGINT,
    expected_yield_bp BIGINT,
    sale_start DATE,
    sale_end DATE,
    repeatable BOOLEAN NOT NULL,
    import_run BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE holdings (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    product_id BIGINT REFERENCES products (id),
    asset_class TEXT NOT NULL,
    balance_fen BIGINT NOT NULL CHECK (balance_fen >= 0),
    opened_on DATE,
    as_of DATE NOT NULL,
    import_run BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX holdings_customer ON holdings (customer_id);

CREATE TABLE transactions (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    direction TEXT NOT NULL,
    category TEXT NOT NULL,
    channel TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    product_id BIGINT REFERENCES products (id),
    description TEXT,
    import_run BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX transactions_customer_time ON transactions (customer_id, occurred_at);
