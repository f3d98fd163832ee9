-- Billing storage for the bulk cycle (docs/billing.md, "Storage"): only the review queue
-- needs an index on the status; the full (status, read_on) index was rewritten for every
-- read received and again when it was billed.
DROP INDEX billing_reads_status;
CREATE INDEX billing_reads_review ON billing_reads (read_on) WHERE status = 'review';
-- Bills are always found by their account (the unique (account, period) key); nothing looks
-- them up by due date alone.
DROP INDEX billing_bills_due;
