import type { Command } from 'commander';
import { configFromOptions, openMigratedStore, print, withConfigOption } from './context.js';

export function registerMigrate(program: Command): void {
  withConfigOption(program.command('migrate'))
    .description("create the store or bring its schema up to this version's migrations")
    .action((options: { config?: string }) => {
      const config = configFromOptions(options);
      const { db, migration } = openMigratedStore(config);
      db.close();
      print(
        migration.applied.length
          ? `store ${config.store.path}: schema ${migration.from} → ${migration.to} (applied ${migration.applied.join(', ')})`
          : `store ${config.store.path}: schema ${migration.to}, up to date`,
      );
    });
}
