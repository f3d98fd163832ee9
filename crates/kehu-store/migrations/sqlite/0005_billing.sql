-- Electricity billing and collections (SQLite). Money is integer fen; dates ISO text;
-- times UTC text (dunning times: business-local). Tariffs are kept as the domain's JSON (validated before they are stored).
CREATE TABLE billing_areas (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE billing_tariffs (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    spec TEXT NOT NULL
);

CREATE TABLE billing_accounts (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    class TEXT NOT NULL,
    area TEXT,
    tariff TEXT NOT NULL,
    penalty_ppm INTEGER,
    deposit_fen INTEGER NOT NULL DEFAULT 0,
    prepaid INTEGER NOT NULL DEFAULT 0,
    opened_on TEXT NOT NULL,
    -- Overpayments kept for the next bills.
    credit_fen INTEGER NOT NULL DEFAULT 0,
    last_theft_on TEXT
);
CREATE INDEX billing_accounts_area ON billing_accounts (area);

CREATE TABLE billing_meters (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES billing_accounts (id),
    ct_ratio INTEGER NOT NULL,
    pt_ratio INTEGER NOT NULL,
    multiplier INTEGER NOT NULL,
    register_digits INTEGER NOT NULL,
    installed_on TEXT NOT NULL,
    capacity_kva INTEGER NOT NULL,
    prepaid_mode INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX billing_meters_account ON billing_meters (account_id);

-- status: clean | review | accepted | corrected | estimated | billed | rejected
CREATE TABLE billing_reads (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    meter_id INTEGER NOT NULL REFERENCES billing_meters (id),
    read_on TEXT NOT NULL,
    value INTEGER NOT NULL,
    prev_read_on TEXT,
    kwh INTEGER,
    flags TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    bill_id INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX billing_reads_meter ON billing_reads (meter_id, read_on);
CREATE INDEX billing_reads_status ON billing_reads (status, read_on);

CREATE TABLE billing_read_edits (
    id INTEGER PRIMARY KEY,
    read_id INTEGER NOT NULL REFERENCES billing_reads (id),
    staff TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX billing_read_edits_read ON billing_read_edits (read_id);

CREATE TABLE billing_bills (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES billing_accounts (id),
    period TEXT NOT NULL,
    kwh INTEGER NOT NULL,
    total_fen INTEGER NOT NULL,
    due_on TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    paid_principal_fen INTEGER NOT NULL DEFAULT 0,
    paid_penalty_fen INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, period)
);
CREATE INDEX billing_bills_due ON billing_bills (due_on);

CREATE TABLE billing_bill_lines (
    bill_id INTEGER NOT NULL REFERENCES billing_bills (id),
    line_no INTEGER NOT NULL,
    item TEXT NOT NULL,
    label TEXT NOT NULL,
    kwh INTEGER NOT NULL,
    price INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (bill_id, line_no)
);

CREATE TABLE billing_payments (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES billing_accounts (id),
    amount_fen INTEGER NOT NULL,
    paid_on TEXT NOT NULL,
    channel TEXT NOT NULL,
    credit_fen INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    reversed_at TEXT,
    reversed_by TEXT,
    reversal_reason TEXT
);
CREATE INDEX billing_payments_account ON billing_payments (account_id);

CREATE TABLE billing_allocations (
    id INTEGER PRIMARY KEY,
    payment_id INTEGER NOT NULL REFERENCES billing_payments (id),
    bill_id INTEGER NOT NULL REFERENCES billing_bills (id),
    principal_fen INTEGER NOT NULL,
    penalty_fen INTEGER NOT NULL
);
CREATE INDEX billing_allocations_bill ON billing_allocations (bill_id);
CREATE INDEX billing_allocations_payment ON billing_allocations (payment_id);

CREATE TABLE billing_dunning (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES billing_accounts (id),
    step TEXT NOT NULL,
    at TEXT NOT NULL,
    staff TEXT NOT NULL,
    approver TEXT,
    planned_at TEXT,
    note TEXT
);
CREATE INDEX billing_dunning_account ON billing_dunning (account_id, at);
