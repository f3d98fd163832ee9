-- The billing run finds the period's reads not yet billed. Without the full status index
-- (dropped in 0011) PostgreSQL had no narrow way to them; this partial index holds only
-- the unbilled reads (a read leaves it when its bill is written). SQLite's run walks the
-- accounts instead and does not need it.
CREATE INDEX billing_reads_unbilled ON billing_reads (read_on) WHERE bill_id IS NULL;
