import path from 'node:path';
import { Option, type Command } from 'commander';
import { exportShard } from '../pipeline/export.js';
import { StoredIds } from '../store/storedIds.js';
import { JOB_TYPES, type JobType } from '../types.js';
import { configFromOptions, openMigratedStore, positiveInteger, print, withConfigOption } from './context.js';

export function registerExport(program: Command): void {
  withConfigOption(program.command('export'))
    .description('write the stored IDs of one type as shard files (one ID per line), for running jobs with other tools')
    .addOption(new Option('--type <type>', 'tweets or users').choices(JOB_TYPES).makeOptionMandatory())
    .requiredOption('--out <dir>', 'folder for the shard files')
    .option('--shard-size <n>', 'IDs per file (default: jobs.shardSize)', positiveInteger)
    .action(async (options: { config?: string; type: JobType; out: string; shardSize?: number }) => {
      const config = configFromOptions(options);
      const { db } = openMigratedStore(config);
      try {
        const ids = new StoredIds(db, config, options.type);
        const plan = await ids.plan(options.shardSize ?? config.jobs.shardSize);
        for (const [index, shard] of plan.shards.entries()) {
          const file = path.resolve(options.out, `${options.type}-${String(index + 1).padStart(5, '0')}.txt`);
          const count = await exportShard(ids, shard, file);
          print(`${file}\t${count} IDs\t${shard.firstId}…${shard.lastId}`);
        }
        if (plan.shards.length === 0) print(`no ${options.type} in the store`);
      } finally {
        db.close();
      }
    });
}
