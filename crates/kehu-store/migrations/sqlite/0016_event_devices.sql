-- Anonymous events by device, kept out of the acknowledged write like the customer
-- timeline (SQLite; migration 0015). The partial index events_anonymous (device) was
-- keyed at random (a device id is a random UUID): a page of write-ahead log per anonymous
-- event. An `identify` now finds the device's earlier anonymous events in this table
-- (filled in bulk with the timeline: same mark, same buckets of seq / 1,000,000) and,
-- after the mark, in the store's in-memory index of the log's tail. Entries stay when
-- their events are attributed; the lookup checks that an event is still anonymous.
DROP INDEX events_anonymous;

CREATE TABLE event_devices (
    bucket INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (bucket, device, seq)
) WITHOUT ROWID;

INSERT INTO event_devices (bucket, device, seq)
    SELECT seq / 1000000, device, seq FROM events
    WHERE customer_id IS NULL AND device IS NOT NULL
      AND seq <= (SELECT indexed_seq FROM event_timeline_meta WHERE id = 1)
    ORDER BY seq / 1000000, device, seq;
