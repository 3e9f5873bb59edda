import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import type { Config } from '../config/load.js';
import { readResultLines } from '../pipeline/resultLines.js';
import { toResultRecord } from '../pipeline/resultRecords.js';
import type { Id, JobType } from '../types.js';

export interface ShardResults {
  file: string;
  first: Id;
  last: Id;
}

export interface DeletedIds {
  count: number;
  /** The IDs, when there are at most hooks.maxInlineIds of them. */
  ids: string[] | null;
  /** Else the file that lists them, one per line. */
  idsFile: string | null;
  /** False when a shard's results file was gone (a cleared cache): IDs of that shard are missing. */
  complete: boolean;
}

/** Where a cycle's list of deleted IDs is kept until its hook has it (outside the cycle folder, which goes at close). */
function deletedIdsFile(config: Config, type: JobType, cycleId: number): string {
  return path.join(config.paths.work, 'hooks', `${type}-cycle-${cycleId}.deleted.ids`);
}

/**
 * The IDs whose result the policy turned into a deletion, read back from the cycle's results files before they are
 * removed, streamed to a file so that a cycle deleting millions holds none of them in memory. A row already gone when
 * the result came is listed too: deleting it downstream is just as right.
 */
export async function collectDeletedIds(config: Config, type: JobType, cycleId: number, shards: readonly ShardResults[]): Promise<DeletedIds> {
  const file = deletedIdsFile(config, type, cycleId);
  await mkdir(path.dirname(file), { recursive: true });
  const out = createWriteStream(file);
  let count = 0;
  let complete = true;
  try {
    for (const shard of shards) {
      if (!existsSync(shard.file)) {
        complete = false;
        continue;
      }
      const pending: string[] = [];
      await readResultLines(shard.file, (_line, value) => {
        const record = toResultRecord(value, config.reconcile.policy, { first: shard.first, last: shard.last });
        if (typeof record !== 'string' && record.taken === 'delete') pending.push(record.id);
      });
      if (pending.length && !out.write(`${pending.join('\n')}\n`)) await once(out, 'drain');
      count += pending.length;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  if (count === 0 || count <= config.hooks.maxInlineIds) {
    const ids = count === 0 ? [] : (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    await rm(file, { force: true });
    return { count, ids, idsFile: null, complete };
  }
  return { count, ids: null, idsFile: file, complete };
}
