-- Electricity billing and collections (PostgreSQL). Money is integer fen; dates DATE;
-- times TIMESTAMPTZ (dunning times: business-local TIMESTAMP). Tariffs are kept as the domain's JSON (validated before they are stored).
CREATE TABLE billing_areas (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE billing_tariffs (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    spec TEXT NOT NULL
);

CREATE TABLE billing_accounts (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    class TEXT NOT NULL,
    area TEXT,
    tariff TEXT NOT NULL,
    penalty_ppm BIGINT,
    deposit_fen BIGINT NOT NULL DEFAULT 0,
    prepaid BOOLEAN NOT NULL DEFAULT false,
    opened_on DATE NOT NULL,
    -- Overpayments kept for the next bills.
    credit_fen BIGINT NOT NULL DEFAULT 0,
    last_theft_on DATE
);
CREATE INDEX billing_accounts_area ON billing_accounts (area);

CREATE TABLE billing_meters (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES billing_accounts (id),
    ct_ratio BIGINT NOT NULL,
    pt_ratio BIGINT NOT NULL,
    multiplier BIGINT NOT NULL,
    register_digits BIGINT NOT NULL,
    installed_on DATE NOT NULL,
    capacity_kva BIGINT NOT NULL,
    prepaid_mode BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX billing_meters_account ON billing_meters (account_id);

-- status: clean | review | accepted | corrected | estimated | billed | rejected
CREATE TABLE billing_reads (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    meter_id BIGINT NOT NULL REFERENCES billing_meters (id),
    read_on DATE NOT NULL,
    value BIGINT NOT NULL,
    prev_read_on DATE,
    kwh BIGINT,
    flags TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    bill_id BIGINT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX billing_reads_meter ON billing_reads (meter_id, read_on);
CREATE INDEX billing_reads_status ON billing_reads (status, read_on);

CREATE TABLE billing_read_edits (
    id BIGSERIAL PRIMARY KEY,
    read_id BIGINT NOT NULL REFERENCES billing_reads (id),
    staff TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX billing_read_edits_read ON billing_read_edits (read_id);

CREATE TABLE billing_bills (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES billing_accounts (id),
    period TEXT NOT NULL,
    kwh BIGINT NOT NULL,
    total_fen BIGINT NOT NULL,
    due_on DATE NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    paid_principal_fen BIGINT NOT NULL DEFAULT 0,
    paid_penalty_fen BIGINT NOT NULL DEFAULT 0,
    UNIQUE (account_id, period)
);
CREATE INDEX billing_bills_due ON billing_bills (due_on);

CREATE TABLE billing_bill_lines (
    bill_id BIGINT NOT NULL REFERENCES billing_bills (id),
    line_no BIGINT NOT NULL,
    item TEXT NOT NULL,
    label TEXT NOT NULL,
    kwh BIGINT NOT NULL,
    price BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    PRIMARY KEY (bill_id, line_no)
);

CREATE TABLE billing_payments (
    id BIGSERIAL PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES billing_accounts (id),
    amount_fen BIGINT NOT NULL,
    paid_on DATE NOT NULL,
    channel TEXT NOT NULL,
    credit_fen BIGINT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    reversed_at TIMESTAMPTZ,
    reversed_by TEXT,
    reversal_reason TEXT
);
CREATE INDEX billing_payments_account ON billing_payments (account_id);

CREATE TABLE billing_allocations (
    id BIGSERIAL PRIMARY KEY,
    payment_id BIGINT NOT NULL REFERENCES billing_payments (id),
    bill_id BIGINT NOT NULL REFERENCES billing_bills (id),
    principal_fen BIGINT NOT NULL,
    penalty_fen BIGINT NOT NULL
);
CREATE INDEX billing_allocations_bill ON billing_allocations (bill_id);
CREATE INDEX billing_allocations_payment ON billing_allocations (payment_id);

CREATE TABLE billing_dunning (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES billing_accounts (id),
    step TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    staff TEXT NOT NULL,
    approver TEXT,
    planned_at TIMESTAMP,
    note TEXT
);
CREATE INDEX billing_dunning_account ON billing_dunning (account_id, at);
