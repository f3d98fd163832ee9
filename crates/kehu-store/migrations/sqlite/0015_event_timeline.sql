-- The per-customer timeline of events, kept out of the acknowledged write (SQLite).
--
-- An index on events (customer_id, ts_ms) is keyed at random with respect to arrival:
-- every event of a batch lands on a different leaf page, so each commit of 500 events
-- wrote ~475 index pages to the write-ahead log, four fifths of the cost of ingest. The
-- index is replaced by this table, filled in bulk (sorted, one transaction) once
-- `store.sqlite_timeline_batch_events` events have arrived after `indexed_seq`: a leaf
-- page is then written once per batch instead of once per commit. The key starts with
-- `bucket` = seq / 1,000,000, so a fill writes into the newest million events' part of
-- the table (a few thousand leaf pages) however long the history is; a customer's
-- timeline seeks each bucket (20 for 20M events) and reads the events after
-- `indexed_seq` from the log by seq.
DROP INDEX events_customer;

CREATE TABLE event_timeline (
    bucket INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (bucket, customer_id, ts_ms, seq)
) WITHOUT ROWID;

-- Events with seq <= indexed_seq are in event_timeline if they have a customer (an
-- identify that attributes older anonymous events adds theirs in its own transaction).
CREATE TABLE event_timeline_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_seq INTEGER NOT NULL
);

INSERT INTO event_timeline (bucket, customer_id, ts_ms, seq)
    SELECT seq / 1000000, customer_id, ts_ms, seq FROM events WHERE customer_id IS NOT NULL
    ORDER BY seq / 1000000, customer_id, ts_ms, seq;
INSERT INTO event_timeline_meta (id, indexed_seq) VALUES (1, COALESCE((SELECT MAX(seq) FROM events), 0));
