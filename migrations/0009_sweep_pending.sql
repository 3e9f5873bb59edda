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
-- One row while a sweep is pending: where it stopped. The IDs are gone through kind by kind (gone, then scrubbed), in
-- ID order, and for each the rows embedding it in the tweets table's ID order: every ID before `swept_id` is done,
-- and of that one the rows up to `swept_to` (the ID as stored; NULL: all of them). `generation` counts the saves.
CREATE TABLE cs_sweep_state (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  generation  INTEGER NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('gone', 'scrubbed')),
  swept_id    TEXT NOT NULL,
  swept_to
);
