-- kehu foundation schema (SQLite). Money is integer fen; dates are ISO text (UTC for times).
CREATE TABLE import_runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    rows_read INTEGER NOT NULL DEFAULT 0,
    rows_loaded INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    branch TEXT,
    import_run INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    gender TEXT NOT NULL,
    birth_date TEXT,
    phone TEXT,
    phone_last4 TEXT,
    id_number TEXT,
    income_band TEXT,
    occupation TEXT,
    branch TEXT,
    manager_id TEXT,
    vip_tier TEXT NOT NULL,
    consent_sms INTEGER NOT NULL,
    consent_push INTEGER NOT NULL,
    consent_call INTEGER NOT NULL,
    personalization INTEGER NOT NULL,
    import_run INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX customers_name ON customers (name);
CREATE INDEX customers_phone_last4 ON customers (phone_last4);
CREATE INDEX customers_manager ON customers (manager_id);

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    risk_level TEXT NOT NULL,
    min_purchase_fen INTEGER NOT NULL,
    term_days INTEGER,
    expected_yield_bp INTEGER,
    sale_start TEXT,
    sale_end TEXT,
    repeatable INTEGER NOT NULL,
    import_run INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

CREATE TABLE holdings (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    product_id INTEGER REFERENCES products (id),
    asset_class TEXT NOT NULL,
    balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0),
    opened_on TEXT,
    as_of TEXT NOT NULL,
    import_run INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX holdings_customer ON holdings (customer_id);

CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    direction TEXT NOT NULL,
    category TEXT NOT NULL,
    channel TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    product_id INTEGER REFERENCES products (id),
    description TEXT,
    import_run INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX transactions_customer_time ON transactions (customer_id, occurred_at);
