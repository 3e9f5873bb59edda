-- Issue 15: the embedded-copies sweep (src/store/sweeps.ts) is cut by reconcile.maxLockMs like the rest of a cycle. A
-- transaction whose time is up commits, with the deletions and geo scrubs that caused it, what its sweep has not done
-- yet; the next transaction (or a run resumed after a crash) goes on from there, and the transaction that finishes
-- the sweep empties both tables. IDs as text, as the JSON has them.
CREATE TABLE cs_sweep_pending (
  kind   TEXT NOT NULL CHECK (kind IN ('gone', 'scrubbed')),
  id     TEXT NOT NULL,
  reason TEXT,            -- gone: the deleted tweet's tombstone reason, repeated by its copies' (copy_<reason>)
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;
-- One row while a sweep is pending: the last row it went through, in ID order (the tweets table's ID as stored; NULL:
-- none yet). A row that embeds a pending ID at or before it was handled already.
CREATE TABLE cs_sweep_state (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  swept_to
);
