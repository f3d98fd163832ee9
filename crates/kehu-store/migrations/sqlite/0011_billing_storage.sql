-- Billing storage for the bulk cycle (docs/billing.md, "Storage").
-- 1. Reads: only the review queue needs an index on the status; the full (status, read_on)
--    index was rewritten for every read received and again when it was billed.
DROP INDEX billing_reads_status;
CREATE INDEX billing_reads_review ON billing_reads (read_on) WHERE status = 'review';
-- 2. Bill lines are only ever read by their bill: one B-tree keyed by (bill, line) instead
--    of a row table plus its primary-key index.
CREATE TABLE billing_bill_lines_new (
    bill_id INTEGER NOT NULL REFERENCES billing_bills (id),
    line_no INTEGER NOT NULL,
    item TEXT NOT NULL,
    label TEXT NOT NULL,
    kwh INTEGER NOT NULL,
    price INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (bill_id, line_no)
) WITHOUT ROWID;
INSERT INTO billing_bill_lines_new SELECT bill_id, line_no, item, label, kwh, price, amount_fen FROM billing_bill_lines;
DROP TABLE billing_bill_lines;
ALTER TABLE billing_bill_lines_new RENAME TO billing_bill_lines;
-- Bills are always found by their account (the unique (account, period) key); nothing looks
-- them up by due date alone.
DROP INDEX billing_bills_due;
