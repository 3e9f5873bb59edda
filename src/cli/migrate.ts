import { existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import type { Config } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { createStore, loadMigrations, migrationName, type MigrationResult } from '../store/migrate.js';
import { createMissingIndexes, formatCost, missingIndexes, neededIndexes } from '../store/preflight.js';
import { resolveTarget } from '../store/target.js';
import type { Db } from '../store/open.js';
import { JOB_TYPES } from '../types.js';
import { configFromOptions, openMigratedStore, print, withConfigOption } from './context.js';

const HELP = `
Without --create, the store must exist: a mistyped store.path is an error, never a new empty store.
--create makes a new store with the default tables (tweets, users) and the ledger, only when store.tables is the
default mapping; an existing archive is never given tables, only the ledger (cs_* tables).
--create-indexes creates the indexes cycles need and the store lacks (named cs_idx_*): on the mapped ID columns, the
author column and every column referencing a mapped table. Building one scans its table and holds the write lock.`;

export function registerMigrate(program: Command): void {
  withConfigOption(program.command('migrate'))
    .description("bring the store's ledger up to this version (--create: make a new store; --create-indexes: add the indexes cycles need)")
    .option('--create', 'create a new store with the default tables if store.path does not exist yet')
    .option('--create-indexes', 'create the missing indexes the work needs (cs_idx_*)')
    .addHelpText('after', HELP)
    .action((options: { config?: string; create?: boolean; createIndexes?: boolean }) => {
      const config = configFromOptions(options);
      let db: Db;
      let migration: MigrationResult;
      let created = false;
      if (options.create && !existsSync(config.store.path)) {
        requireDefaultMapping(config);
        db = createStore(config.store.path);
        const migrations = loadMigrations();
        migration = { from: 0, to: migrations.length, applied: migrations.map(migrationName) };
        created = true;
      } else {
        ({ db, migration } = openMigratedStore(config));
      }
      try {
        if (created) print(`store ${config.store.path}: created with the default tables and the ledger (schema ${migration.to}; applied ${migration.applied.join(', ')})`);
        else
          print(
            migration.applied.length
              ? `store ${config.store.path}: schema ${migration.from} → ${migration.to} (applied ${migration.applied.join(', ')})`
              : `store ${config.store.path}: schema ${migration.to}, up to date`,
          );
        if (options.createIndexes) {
          const made = createMissingIndexes(db, config, JOB_TYPES, (need) => print(`creating ${need.create} (${formatCost(need)}) …`));
          print(made.length ? `created ${made.length} index${made.length === 1 ? '' : 'es'}` : 'every index the work needs is in place');
        } else {
          const missing = missingIndexes(db, neededIndexes(config, JOB_TYPES, resolveTarget(db, config))).filter((need) => !need.present);
          for (const need of missing) print(`missing index: ${need.create} (${formatCost(need)})`);
          if (missing.length) print('cycles refuse to start without them: run `compliance-sync migrate --create-indexes`');
        }
      } finally {
        db.close();
      }
    });
}

/** A new store gets the default tables, so the mapping must name them; an archive with other tables already exists. */
function requireDefaultMapping(config: Config): void {
  const defaults = configSchema.parse({ store: { path: 'x' } }).store.tables;
  if (isDeepStrictEqual(JSON.parse(JSON.stringify(config.store.tables)), defaults)) return;
  throw new ConfigError(`store.path: there is no store at ${config.store.path}, and store.tables maps tables a new store would not have`, {
    hint: 'point store.path at the existing archive that has those tables; or remove store.tables to create a new store with the default tables',
  });
}
