import { InvalidArgumentError, type Command } from 'commander';
import { rememberPaths } from '../errors.js';
import { loadConfig, resolveConfigPath, type Config } from '../config/load.js';
import { migrate, type MigrationResult } from '../store/migrate.js';
import { openStore, requireExistingStore, type Db } from '../store/open.js';

/** Adds the --config option every store-facing command takes. */
export function withConfigOption(command: Command): Command {
  return command.option(
    '-c, --config <file>',
    'config file (default: $COMPLIANCE_SYNC_CONFIG, else $CONFIGURATION_DIRECTORY/config.json, else ./config.json)',
  );
}

export function configFromOptions(options: { config?: string }): Config {
  const config = loadConfig(resolveConfigPath(options.config));
  // So that "disk full" and "permission denied" can name the store or work folder (src/errors.ts).
  rememberPaths({ store: config.store.path, work: config.paths.work });
  return config;
}

/**
 * Opens the existing store, runs `check` on it (a preflight; it must only read), then brings its ledger up to date.
 * A missing store is a config error (only `migrate --create` and `demo` make one); a failed check writes nothing.
 */
export function openMigratedStore(config: Config, check?: (db: Db) => void): { db: Db; migration: MigrationResult } {
  requireExistingStore(config);
  const db = openStore(config.store.path);
  try {
    check?.(db);
    return { db, migration: migrate(db) };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Opens the existing store and runs `check` on it, without migrating (for a dry run, which writes nothing). */
export function openCheckedStore(config: Config, check: (db: Db) => void): Db {
  requireExistingStore(config);
  const db = openStore(config.store.path);
  try {
    check(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Opens the existing store read-only, for commands that must never alter it (`status`, `report`, `check-config`). */
export function openStoreReadOnly(config: Config): Db {
  requireExistingStore(config);
  return openStore(config.store.path, { readonly: true });
}

/** The CLI's own output (not logs): plain text or JSON on stdout. */
export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
}

/** Left-aligned two-column text, for summaries. */
export function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

/** Option parser for counts: a usage error (64) names the option when the value is not a positive integer. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
