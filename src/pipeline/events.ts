import { EventEmitter } from 'node:events';
import type { ShardState } from '../store/ledger.js';
import type { JobType } from '../types.js';

/** Typed lifecycle events: the progress display and the tests follow the pipeline through these, never by sleeping. */
export interface CycleEventMap {
  'cycle:started': [{ type: JobType; cycleId: number; shards: number; ids: number; resumed: boolean }];
  'shard:state': [{ type: JobType; cycleId: number; seq: number; shards: number; state: ShardState; ids: number; error?: string }];
  'job:created': [{ type: JobType; cycleId: number; seq: number; jobId: string; attempt: number; adopted: boolean }];
  'job:status': [{ type: JobType; cycleId: number; seq: number; jobId: string; status: string }];
  'apply:batch': [{ type: JobType; cycleId: number; seq: number; linesRead: number; bytesRead: number }];
  'cycle:closed': [{ type: JobType; cycleId: number; summary: CycleSummary }];
  /** Every end of runCycle, whatever the outcome (`failed`: it threw; the next run resumes the cycle). */
  'cycle:ended': [{ type: JobType; outcome: CycleSummary['state'] | 'failed'; dryRun: boolean }];
}

export class CycleEvents extends EventEmitter<CycleEventMap> {}

export interface CycleSummary {
  type: JobType;
  cycleId: number;
  state: 'closed' | 'held' | 'interrupted';
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  idsChecked: number;
  shards: { total: number; applied: number; failed: number; held: number };
  jobsUsed: number;
  actions: Record<string, number>;
  byReason: Record<string, Record<string, number>>;
  notFound: number;
  rejected: Record<string, number>;
  marksCleared: number;
  failures: { seq: number; error: string }[];
}
