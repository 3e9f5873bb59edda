-- Deliveries of the hooks (hooks.onCycleClosed, hooks.onDeletions): recorded as pending before the cycle closes, so a
-- crash before delivery is delivered on the next start; failures stay visible in `status`.
CREATE TABLE cs_hook_deliveries (
  id           INTEGER PRIMARY KEY,
  hook         TEXT NOT NULL CHECK (hook IN ('onCycleClosed', 'onDeletions')),
  cycle_id     INTEGER NOT NULL REFERENCES cs_cycles(id),
  state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  payload_json TEXT,                 -- what is sent; dropped once delivered
  ids_file     TEXT,                 -- the file of deleted IDs a large payload names
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  UNIQUE (hook, cycle_id)
);

-- When a run the safety gate had held was applied on an operator's --confirm-deletions (the report lists these).
ALTER TABLE cs_apply_runs ADD COLUMN confirmed_at TEXT;
