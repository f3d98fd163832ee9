-- Indexes dropped for a bulk load into an empty table, recorded in the load's own
-- transaction and deleted when they are built again right after its commit. Whatever is
-- left here (a crash came in between) is built when the store is next opened.
CREATE TABLE pending_indexes (
    name TEXT PRIMARY KEY,
    ddl TEXT NOT NULL
);
