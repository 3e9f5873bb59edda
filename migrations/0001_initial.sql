-- The ledger the pipeline resumes from. Ledger migrations create and change cs_* objects only: the content tables are
-- the archive owner's (a new store gets the default ones from content/default_tables.sql).

-- This store's identity, made once: job names carry it so a restarted process recognises its own jobs.
CREATE TABLE cs_store (
  singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
  store_id   TEXT NOT NULL,
  created_at TEXT NOT NULL
);
INSERT INTO cs_store (singleton, store_id, created_at)
VALUES (1, lower(hex(randomblob(6))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- One pass over every stored ID of one type.
CREATE TABLE cs_cycles (
  id           INTEGER PRIMARY KEY,
  type         TEXT NOT NULL CHECK (type IN ('tweets', 'users')),
  state        TEXT NOT NULL CHECK (state IN ('planning', 'running', 'closed', 'abandoned')),
  trigger      TEXT NOT NULL,                -- schedule | catch-up | manual | dry-run
  started_at   TEXT NOT NULL,
  max_id       INTEGER,                      -- snapshot: the highest stored ID when planned
  id_count     INTEGER,                      -- snapshot: stored IDs covered by the plan
  shard_count  INTEGER,
  finished_at  TEXT,
  summary_json TEXT
);
-- Never two unfinished cycles of one type.
CREATE UNIQUE INDEX cs_cycles_one_open ON cs_cycles(type) WHERE state IN ('planning', 'running');

-- A contiguous ID range uploaded as one job; its state is the pipeline step it has reached.
CREATE TABLE cs_shards (
  id             INTEGER PRIMARY KEY,
  cycle_id       INTEGER NOT NULL REFERENCES cs_cycles(id),
  seq            INTEGER NOT NULL,
  first_id       INTEGER NOT NULL,
  last_id        INTEGER NOT NULL,
  id_count       INTEGER NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('planned', 'exported', 'job_created', 'uploaded', 'complete',
                                                'downloaded', 'applied', 'held', 'failed')),
  attempts       INTEGER NOT NULL DEFAULT 0,   -- jobs created for this shard so far
  job_id         TEXT,                         -- the current job (cs_jobs.id)
  apply_run_id   INTEGER REFERENCES cs_apply_runs(id),
  error          TEXT,
  updated_at     TEXT NOT NULL,
  UNIQUE (cycle_id, seq)
);

-- X's jobs, as we last saw them. Signed URLs are never stored: they are fetched again with the job when needed.
CREATE TABLE cs_jobs (
  id                  TEXT PRIMARY KEY,        -- X's job id, a decimal string
  shard_id            INTEGER NOT NULL REFERENCES cs_shards(id),
  attempt             INTEGER NOT NULL,
  type                TEXT NOT NULL,
  name                TEXT NOT NULL,
  status              TEXT NOT NULL,           -- as X last reported it (created | in_progress | complete | failed | expired | …), or failed/expired when we retired it
  created_at          TEXT NOT NULL,
  upload_expires_at   TEXT NOT NULL,
  download_expires_at TEXT NOT NULL,
  polls               INTEGER NOT NULL DEFAULT 0,
  error               TEXT,
  updated_at          TEXT NOT NULL
);
CREATE INDEX cs_jobs_shard ON cs_jobs(shard_id);

-- One application of a results file (a shard's, or one given to `apply`), with its checkpoint.
CREATE TABLE cs_apply_runs (
  id              INTEGER PRIMARY KEY,
  type            TEXT NOT NULL CHECK (type IN ('tweets', 'users')),
  source          TEXT NOT NULL,               -- the results file
  source_identity TEXT,                        -- its size, mtime and inode: a resume must read the same file
  shard_id        INTEGER,
  state           TEXT NOT NULL CHECK (state IN ('running', 'done', 'held', 'failed')),
  as_of           TEXT NOT NULL,               -- the time written into compliance_at, fixed per run so reapplying is idempotent
  checkpoint_line INTEGER NOT NULL DEFAULT 0,  -- lines of the file whose effects are committed
  started_at      TEXT NOT NULL,
  finished_at     TEXT,
  counts_json     TEXT                         -- the run's totals (read, applied per action, not found, rejects)
);

-- What was done, counted per run, reason and action taken: the audit a compliance report is built from.
CREATE TABLE cs_audit_counts (
  run_id       INTEGER NOT NULL REFERENCES cs_apply_runs(id),
  reason       TEXT NOT NULL,
  action_taken TEXT NOT NULL,   -- delete | mark | scrub_geo | ignore | not_found; a users run adds the tweets it
                                -- changed: cascade_delete | cascade_mark | cascade_scrub_geo (counted in tweets)
  count        INTEGER NOT NULL,
  PRIMARY KEY (run_id, reason, action_taken)
) WITHOUT ROWID;

-- The daemon's schedule bookkeeping: last start and success per type (for catch-up after downtime), and the next
-- run the running daemon has scheduled (for `status`).
CREATE TABLE cs_schedule (
  type            TEXT PRIMARY KEY CHECK (type IN ('tweets', 'users')),
  last_started_at TEXT,
  last_success_at TEXT,
  next_run_at     TEXT
);
