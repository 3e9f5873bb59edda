import path from 'node:path';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import type { Ledger } from '../store/ledger.js';
import type { Db } from '../store/open.js';
import type { ComplianceClient } from '../xapi/client.js';
import type { Sleep } from '../clock.js';
import type { CycleEvents } from './events.js';

/** What a cycle needs, built once by the CLI or the daemon and shared by the tweets and users cycles. */
export interface CycleContext {
  db: Db;
  ledger: Ledger;
  config: Config;
  client: ComplianceClient;
  logger: Logger;
  events: CycleEvents;
  /** Stops the pipeline after the current step or batch; the ledger stays consistent. */
  signal: AbortSignal;
  now: () => Date;
  sleep: Sleep;
  /** Apply shards whose deletions tripped the safety gate (an operator has checked them). */
  confirmDeletions?: boolean;
}

/** Where a cycle keeps its files: shard ID lists and downloaded results. Deleted when the cycle closes. */
export function cycleWorkDir(config: Config, cycleId: number): string {
  return path.join(config.paths.work, `cycle-${cycleId}`);
}

export function shardFile(config: Config, cycleId: number, seq: number): string {
  return path.join(cycleWorkDir(config, cycleId), `shard-${String(seq).padStart(5, '0')}.ids`);
}

export function resultFile(config: Config, cycleId: number, seq: number): string {
  return path.join(cycleWorkDir(config, cycleId), `shard-${String(seq).padStart(5, '0')}.results.ndjson`);
}
