-- Marks kept beside the content, for mappings without compliance columns: no ALTER TABLE of an archive another tool
-- writes, and a mark survives that tool's INSERT OR REPLACE of the row (it is keyed by the ID, not the row).
CREATE TABLE cs_marks (
  type   TEXT NOT NULL CHECK (type IN ('tweets', 'users')),
  id     INTEGER NOT NULL,
  state  TEXT NOT NULL,         -- as compliance_state: protected | suspended | edited | …
  reason TEXT NOT NULL,         -- as compliance_reason (author_<reason> when cascaded from the author)
  at     TEXT NOT NULL,         -- as compliance_at: the apply run's as_of; a closing cycle clears marks older than it
  run_id INTEGER,               -- the apply run that set it (cs_apply_runs.id)
  PRIMARY KEY (type, id)
) WITHOUT ROWID;

-- Every row an apply run changed, per table, cause and kind, so the report's deletions equal the rows that are gone.
CREATE TABLE cs_change_counts (
  run_id     INTEGER NOT NULL REFERENCES cs_apply_runs(id),
  table_name TEXT NOT NULL,
  cause      TEXT NOT NULL CHECK (cause IN ('result', 'fk', 'cascade', 'trigger')),
  kind       TEXT NOT NULL CHECK (kind IN ('deleted', 'updated', 'marked', 'inserted')),
  count      INTEGER NOT NULL,
  PRIMARY KEY (run_id, table_name, cause, kind)
) WITHOUT ROWID;
