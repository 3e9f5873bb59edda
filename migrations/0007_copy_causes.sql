-- Issue 12: rows changed because they were copies of a deleted tweet (retweets), embedded copies removed from another
-- row's JSON, and orphans (media, places) no stored row references any more are counted under causes of their own.
-- SQLite cannot widen a CHECK in place: the table is rebuilt with its rows.
CREATE TABLE cs_change_counts_next (
  run_id     INTEGER NOT NULL REFERENCES cs_apply_runs(id),
  table_name TEXT NOT NULL,
  cause      TEXT NOT NULL CHECK (cause IN ('result', 'fk', 'cascade', 'copy', 'embed', 'orphan', 'trigger')),
  kind       TEXT NOT NULL CHECK (kind IN ('deleted', 'updated', 'marked', 'inserted')),
  count      INTEGER NOT NULL,
  PRIMARY KEY (run_id, table_name, cause, kind)
) WITHOUT ROWID;
INSERT INTO cs_change_counts_next (run_id, table_name, cause, kind, count) SELECT run_id, table_name, cause, kind, count FROM cs_change_counts;
DROP TABLE cs_change_counts;
ALTER TABLE cs_change_counts_next RENAME TO cs_change_counts;
