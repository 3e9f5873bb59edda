-- A store's identity is bound to where it lives, so that a copy (a restored backup, a staging copy) knows it is one
-- and takes an identity of its own: two copies must never create jobs under the same names (see src/store/ledger.ts).
ALTER TABLE cs_store ADD COLUMN bound_path TEXT;   -- the store file's real path when the identity was bound
ALTER TABLE cs_store ADD COLUMN bound_file TEXT;   -- "device:inode" of that file

-- The name of the job a shard is about to create, committed before the create call. After a crash between "create"
-- and "record", only an active job of exactly this name (it carries a random part) is adopted as the shard's.
ALTER TABLE cs_shards ADD COLUMN pending_job_name TEXT;
