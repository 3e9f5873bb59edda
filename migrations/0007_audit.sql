-- The IDs whose geo a cycle scrubbed: ID and time, never content. Written in the transaction that scrubs the row (a
-- user's scrub: each of their tweets), read by `compliance-sync audit` to check that no geo came back into them.
CREATE TABLE cs_scrubs (
  type        TEXT NOT NULL CHECK (type IN ('tweets', 'users')),
  id          INTEGER NOT NULL,
  scrubbed_at TEXT NOT NULL,   -- the apply run's as_of
  run_id      INTEGER,         -- cs_apply_runs.id
  PRIMARY KEY (type, id)
) WITHOUT ROWID;

-- Each `compliance-sync audit`: when, what it found per check (counts and example IDs, never content), and whether
-- the optional byte scan ran. `report` and `status` show the last one.
CREATE TABLE cs_audits (
  id          INTEGER PRIMARY KEY,
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  outcome     TEXT NOT NULL CHECK (outcome IN ('clean', 'findings', 'incomplete')),
  findings    INTEGER NOT NULL, -- violations over every check
  scan_bytes  INTEGER NOT NULL, -- 1 when the byte scan ran
  result_json TEXT NOT NULL     -- per check: name, count, examples, or why it could not run
);
