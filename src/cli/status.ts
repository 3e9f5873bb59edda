import type { Command } from 'commander';
import { readStoreStatus } from '../store/status.js';
import { configFromOptions, openMigratedStore, print, printJson, table, withConfigOption } from './context.js';

export function registerStatus(program: Command): void {
  withConfigOption(program.command('status'))
    .description('show the store: schema, row counts, recent cycles')
    .option('--json', 'print as JSON')
    .action((options: { config?: string; json?: boolean }) => {
      const config = configFromOptions(options);
      const { db } = openMigratedStore(config);
      try {
        const tables = [config.store.tables.tweets.table, config.store.tables.users.table];
        const status = readStoreStatus(db, tables);
        if (options.json) {
          printJson({ store: config.store.path, ...status });
          return;
        }
        print(
          table([
            ['store', config.store.path],
            ['store id', status.storeId],
            ['schema version', `${status.schemaVersion} (${status.migrations.map((m) => `${m.version}_${m.name}`).join(', ')})`],
            ...status.tables.map(({ name, rows }) => [`rows in ${name}`, rows] as const),
          ]),
        );
        print(status.lastCycles.length ? '\nrecent cycles:' : '\nno cycles yet');
        for (const cycle of status.lastCycles) {
          print(`  #${cycle.id} ${cycle.type} ${cycle.state} (${cycle.trigger}) started ${cycle.startedAt}${cycle.finishedAt ? `, finished ${cycle.finishedAt}` : ''}`);
        }
      } finally {
        db.close();
      }
    });
}
