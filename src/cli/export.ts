import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { exportShard } from '../pipeline/export.js';
import { StoredIds } from '../store/storedIds.js';
import { JOB_TYPES, type JobType } from '../types.js';
import { configFromOptions, openMigratedStore, positiveInteger, print, withConfigOption } from './context.js';

/** What export itself writes: `tweets-00001.txt`, and the temp file of a shard an interruption cut short. */
const SHARD_FILE = /^(tweets|users)-\d{5}\.txt(\.tmp-\d+)?$/;

export function registerExport(program: Command): void {
  withConfigOption(program.command('export'))
    .description('write the IDs of one type a cycle checks (the stored IDs, and those of store.dependents columns with check) as shard files (one ID per line), for running jobs with other tools')
    .addOption(new Option('--type <type>', 'tweets or users').choices(JOB_TYPES).makeOptionMandatory())
    .requiredOption('--out <dir>', 'folder for the shard files (new, empty, or holding only earlier shard files)')
    .option('--shard-size <n>', 'IDs per file (default: jobs.shardSize)', positiveInteger)
    .action(async (options: { config?: string; type: JobType; out: string; shardSize?: number }) => {
      const out = path.resolve(options.out);
      // Refused before anything is opened; created (and its stale shards removed) only once the store opened.
      const stale = checkOutFolder(out, options.type);
      const config = configFromOptions(options);
      const { db } = openMigratedStore(config);
      try {
        mkdirSync(out, { recursive: true });
        for (const file of stale) rmSync(file, { force: true });
        const ids = new StoredIds(db, config, options.type);
        const plan = await ids.plan(options.shardSize ?? config.jobs.shardSize);
        for (const [index, shard] of plan.shards.entries()) {
          const file = path.join(out, `${options.type}-${String(index + 1).padStart(5, '0')}.txt`);
          const count = await exportShard(ids, shard, file);
          print(`${file}\t${count} IDs\t${shard.firstId}…${shard.lastId}`);
        }
        if (plan.shards.length === 0) print(`no ${options.type} in the store`);
      } finally {
        db.close();
      }
    });
}

/**
 * The folder must hold nothing but shard files: other files would be taken for shards by whoever runs the jobs.
 * Returns the earlier shard files of this type, to be removed, since a smaller export would leave stale ones beside
 * the new. Changes nothing itself.
 */
function checkOutFolder(out: string, type: JobType): string[] {
  let entries: string[];
  try {
    if (!statSync(out).isDirectory()) {
      throw new UsageError(`--out ${out} is a file; export writes a folder of shard files`, { hint: 'pass a new or empty folder, e.g. --out shards/' });
    }
    entries = readdirSync(out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const foreign = entries.filter((name) => !SHARD_FILE.test(name));
  if (foreign.length > 0) {
    const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, … (${foreign.length} in all)` : '');
    throw new UsageError(`--out ${out} is not empty (${shown}); export writes only into a folder of its own`, {
      hint: 'pass a new or empty folder, e.g. --out shards/',
    });
  }
  return entries.filter((name) => name.startsWith(`${type}-`)).map((name) => path.join(out, name));
}
