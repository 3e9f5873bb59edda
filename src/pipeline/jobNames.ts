import type { JobType } from '../types.js';

/**
 * Deterministic job names (≤ 64 chars) that say whose job it is: store, type, cycle, shard and attempt.
 * After a crash between "create" and "record", the 409 conflict lists the active job; its name tells us it is ours.
 */
export interface JobNameParts {
  storeId: string;
  type: JobType;
  cycleId: number;
  seq: number;
  attempt: number;
}

const PATTERN = /^cs-([0-9a-f]{1,24})-([tu])(\d{1,12})-s(\d{1,9})-a(\d{1,4})$/;

export function jobName(parts: JobNameParts): string {
  return `cs-${parts.storeId}-${parts.type === 'tweets' ? 't' : 'u'}${parts.cycleId}-s${parts.seq}-a${parts.attempt}`;
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
  };
}
