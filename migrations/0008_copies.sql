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

-- Which tweet embeds which (store.tables.tweets.embeds: retweets, quotes, v2 expansions in raw JSON), kept by
-- triggers compliance-sync installs on the mapped tweets table (cs_embeds_*), so that a deletion finds the rows that
-- carry a copy of the tweet by index instead of a pass over the table. IDs as the JSON has them (text); an entry may
-- outlive what it says (the row is checked again before anything is changed).
CREATE TABLE cs_embeds (
  embedded_id TEXT NOT NULL,
  tweet_id    NOT NULL,
  PRIMARY KEY (embedded_id, tweet_id)
) WITHOUT ROWID;
CREATE INDEX cs_embeds_tweet ON cs_embeds(tweet_id);
-- The rules the triggers and entries were made for, and how far the entries of the rows stored before are filled in
-- (up to and including `filled_to`, in ID order; complete = 1 once all are).
CREATE TABLE cs_embeds_state (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  rules     TEXT NOT NULL,
  filled_to,
  complete  INTEGER NOT NULL DEFAULT 0
);
