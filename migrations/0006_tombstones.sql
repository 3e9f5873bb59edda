-- The IDs deleted for compliance: ID, type, reason and time, never content. Written in the transaction that deletes
-- the row (a user's cascaded tweets too), read by the ingest guard's triggers (reconcile.guard) and by
-- `compliance-sync tombstones export` for downstream systems that must delete the same IDs.
CREATE TABLE cs_tombstones (
  type       TEXT NOT NULL CHECK (type IN ('tweets', 'users')),
  id         INTEGER NOT NULL,
  reason     TEXT NOT NULL,   -- the result's reason; author_<reason> for a user's tweets, dependent_<reason> for rows
                              -- of a mapped table deleted because they reference a deleted row
  deleted_at TEXT NOT NULL,   -- the apply run's as_of
  run_id     INTEGER,         -- cs_apply_runs.id
  PRIMARY KEY (type, id)
) WITHOUT ROWID;
CREATE INDEX cs_tombstones_deleted_at ON cs_tombstones(deleted_at);

-- The guard's hand-over of a row's mark columns across an ingester's INSERT OR REPLACE: saved by a BEFORE INSERT
-- trigger while the old row is still there, written back onto the new row by an AFTER INSERT trigger. Empty between
-- statements except after an UPSERT that took the UPDATE path (its row kept its marks; the next insert refreshes it).
CREATE TABLE cs_guard_marks (
  type   TEXT NOT NULL CHECK (type IN ('tweets', 'users')),
  id     INTEGER NOT NULL,
  state  TEXT,
  reason TEXT,
  at     TEXT,
  PRIMARY KEY (type, id)
) WITHOUT ROWID;
