import { randomBytes } from 'node:crypto';
import type { JobType } from '../types.js';

/**
 * Job names (≤ 64 chars) that say whose job it is: store, type, cycle, shard and attempt, then a random part that
 * only this store's ledger knows (cs_shards.pending_job_name, recorded before the create). After a crash between
 * "create" and "record", the 409 conflict lists the active job; only a job whose name is exactly the recorded one is
 * adopted — two copies of one store, or a store restored from a backup, can share everything but that random part.
 */
export interface JobNameParts {
  storeId: string;
  type: JobType;
  cycleId: number;
  seq: number;
  attempt: number;
  /** Random hex; absent in names made before it existed. */
  nonce?: string;
}

const PATTERN = /^cs-([0-9a-f]{1,24})-([tu])(\d{1,12})-s(\d{1,9})-a(\d{1,4})(?:-([0-9a-f]{8}))?$/;

export function jobName(parts: JobNameParts): string {
  const base = `cs-${parts.storeId}-${parts.type === 'tweets' ? 't' : 'u'}${parts.cycleId}-s${parts.seq}-a${parts.attempt}`;
  return parts.nonce ? `${base}-${parts.nonce}` : base;
}

/** A new name for the shard's next job, with a fresh random part. */
export function newJobName(parts: Omit<JobNameParts, 'nonce'>): string {
  return jobName({ ...parts, nonce: randomBytes(4).toString('hex') });
}

export function parseJobName(name: string | undefined): JobNameParts | null {
  const match = name ? PATTERN.exec(name) : null;
  if (!match) return null;
  return {
    storeId: match[1]!,
    type: match[2] === 't' ? 'tweets' : 'users',
    cycleId: Number(match[3]),
    seq: Number(match[4]),
    attempt: Number(match[5]),
    ...(match[6] ? { nonce: match[6] } : {}),
  };
}
