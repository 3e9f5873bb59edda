-- When a cycle's outcome was reported to whoever ran it (the CLI printed its summary, the daemon logged it). A cycle
-- that closed in a run stopped before reporting it is that run's result: the rerun reports it instead of spending
-- jobs on a new cycle (src/pipeline/cycle.ts).
ALTER TABLE cs_cycles ADD COLUMN reported_at TEXT;
UPDATE cs_cycles SET reported_at = finished_at WHERE state IN ('closed', 'abandoned');
