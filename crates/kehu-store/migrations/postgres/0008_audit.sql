-- The audit trail of security-relevant staff actions: logins (success, failure,
-- lock-out), logouts, every view of unmasked personal data, app keys created and
-- revoked. Append-only: kehu never updates or deletes a row. `staff_id` is the id as
-- typed at login (it may name nobody); `branch` is the staff member's branch at the time;
-- `customer` the customer number and `fields` the comma-separated fields shown in full.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    staff_id TEXT NOT NULL,
    branch TEXT,
    action TEXT NOT NULL,
    customer TEXT,
    fields TEXT,
    ip TEXT,
    user_agent TEXT,
    -- what else the action concerns (the app name of an app key created or revoked)
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (occurred_at);
CREATE INDEX audit_log_staff_at ON audit_log (staff_id, occurred_at);
