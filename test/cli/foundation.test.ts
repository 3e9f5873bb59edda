import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { REPO_ROOT, useFileTempDir, useTempDir, writeJson } from '../helpers/tmp.js';

const tempDir = useTempDir();
const fileTempDir = useFileTempDir();

function columns(file: string, table: string): string[] {
  return execFileSync('sqlite3', [file, `SELECT name FROM pragma_table_info('${table}') ORDER BY cid`], { encoding: 'utf8' })
    .trim()
    .split('\n');
}

/**
 * One `migrate --create` for the whole file (a spawn costs ~0.3 s of CPU): its own test reads the result, and the tests
 * that need a new default store get a copy of the file, taken here before any test runs a command on it.
 */
let created: { config: string; store: string; result: CliResult; pristine: string };
beforeAll(() => {
  const dir = fileTempDir();
  const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'new/store.db' } });
  const result = runCli(['migrate', '--create', '--config', config]);
  const store = path.join(dir, 'new/store.db');
  const pristine = path.join(fileTempDir(), 'store.db');
  // The CLI has exited and closed the store, so the file alone is the whole store (no -wal to copy with it).
  if (result.code === 0 && !existsSync(`${store}-wal`)) copyFileSync(store, pristine);
  created = { config, store, result, pristine };
});

/** A new default store as `migrate --create` makes it, at dir/store.db. */
function newStore(dir: string): string {
  const store = path.join(dir, 'store.db');
  copyFileSync(created.pristine, store);
  return store;
}

/** Each fault alone, and the field the refusal must name. */
const BAD_CONFIGS: [Record<string, unknown>, string][] = [
  [{ jobs: { shardSize: 0 } }, 'jobs.shardSize'],
  [{ unknownKey: true }, 'unknownKey'],
  [{ schedule: { cron: '61 * * * *' } }, 'schedule.cron'],
  [{ tables: { tweets: { table: 'tweets; DROP TABLE users' } } }, 'store.tables.tweets.table'],
];

/** A config with the given faults (`tables` goes under `store`). */
function badConfig(...patches: Record<string, unknown>[]): Record<string, unknown> {
  const config: Record<string, unknown> = { store: { path: 'store.db' } };
  for (const { tables, ...rest } of patches) {
    Object.assign(config, rest);
    if (tables) config.store = { path: 'store.db', tables };
  }
  return config;
}

describe('compliance-sync CLI (foundation)', () => {
  it('--help lists the commands and --version prints the version', () => {
    const help = runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['migrate', 'check-config', 'status']) expect(help.stdout).toContain(command);
    expect(runCli(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("an unknown command or option is a usage error (64): one line and a Try: naming the command's help", () => {
    // Also the unknown-command and unknown-option cases of the usage-error test in defaults.test.ts.
    const command = runCli(['frobnicate']);
    expect(command.code).toBe(64);
    expect(command.stderr).toBe("compliance-sync: unknown command 'frobnicate'\nTry: compliance-sync --help\n");
    const option = runCli(['status', '--frob']);
    expect(option.code).toBe(64);
    expect(option.stderr).toBe("compliance-sync: unknown option '--frob'\nTry: compliance-sync status --help\n");
  });

  it('migrate --create creates the default schema (seen by the sqlite3 shell) and migrate is idempotent', () => {
    const { config, store, result: first } = created;
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('applied 0001_initial');
    expect(columns(store, 'tweets')).toEqual([
      'id', 'author_id', 'created_at', 'text', 'geo_lat', 'geo_lon', 'place_id', 'raw_json',
      'compliance_state', 'compliance_reason', 'compliance_at',
    ]);
    expect(columns(store, 'users')).toEqual([
      'id', 'username', 'name', 'created_at', 'raw_json', 'compliance_state', 'compliance_reason', 'compliance_at',
    ]);
    expect(execFileSync('sqlite3', [store, "SELECT name FROM pragma_index_list('tweets')"], { encoding: 'utf8' })).toContain('author_id');
    expect(execFileSync('sqlite3', [store, 'PRAGMA journal_mode'], { encoding: 'utf8' }).trim()).toBe('wal');
    const schemaBefore = execFileSync('sqlite3', [store, '.schema'], { encoding: 'utf8' });
    const second = runCli(['migrate', '--config', config]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('up to date');
    expect(execFileSync('sqlite3', [store, '.schema'], { encoding: 'utf8' })).toBe(schemaBefore);
  });

  it('migrate refuses a store whose version is higher than the code, naming both versions (exit 1)', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' } });
    execFileSync('sqlite3', [newStore(dir), 'PRAGMA user_version = 42']);
    const result = runCli(['migrate', '-c', config]);
    expect(result.code).toBe(1);
    const latest = readdirSync(path.join(REPO_ROOT, 'migrations')).filter((name) => /^\d{4}_\w+\.sql$/.test(name)).length;
    expect(result.stderr).toMatch(new RegExp(`version 42.*version ${latest}\\)`));
    expect(result.stderr).toMatch(/^Try: /m);
  });

  it.each(BAD_CONFIGS)('a bad config (%j) is a config error naming the field', (patch, field) => {
    const config = writeJson(path.join(tempDir(), 'config.json'), badConfig(patch));
    // What the commands load (src/cli/context.ts configFromOptions); the CLI's exit code for it is the next test's.
    expect(() => loadConfig(config, { X_BEARER_TOKEN: 't' })).toThrow(ConfigError);
    expect(() => loadConfig(config, { X_BEARER_TOKEN: 't' })).toThrow(field);
  });

  it('check-config, migrate and status exit 78 on a bad config, naming every bad field', () => {
    // All the faults above in one config, so each command is spawned once rather than once per fault.
    const config = writeJson(path.join(tempDir(), 'config.json'), badConfig(...BAD_CONFIGS.map(([patch]) => patch)));
    for (const command of ['check-config', 'migrate', 'status']) {
      const result = runCli([command, '--config', config], { env: { X_BEARER_TOKEN: 't' } });
      expect(result.code, command).toBe(78);
      for (const [, field] of BAD_CONFIGS) expect(result.stderr, command).toContain(field);
    }
  });

  it('finds the config through $COMPLIANCE_SYNC_CONFIG, $CONFIGURATION_DIRECTORY and ./config.json', () => {
    const dir = tempDir();
    writeJson(path.join(dir, 'config.json'), { store: { path: 'cwd.db' } });
    const envFile = writeJson(path.join(dir, 'env.json'), { store: { path: 'env.db' } });
    expect(runCli(['migrate', '--create'], { cwd: dir }).stdout).toContain('cwd.db');
    expect(runCli(['migrate', '--create'], { cwd: dir, env: { COMPLIANCE_SYNC_CONFIG: envFile } }).stdout).toContain('env.db');
    const confDir = tempDir();
    writeJson(path.join(confDir, 'config.json'), { store: { path: 'confdir.db' } });
    expect(runCli(['migrate', '--create'], { cwd: dir, env: { CONFIGURATION_DIRECTORY: confDir } }).stdout).toContain('confdir.db');
  });

  it('check-config prints the resolved config with the token masked and the next 5 runs', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' }, schedule: { cron: '*/10 * * * *' } });
    const token = 'DISTINCTIVE-secret-token-0123456789';
    const result = runCli(['check-config', '--json', '--config', config], { env: { X_BEARER_TOKEN: token } });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(token);
    const parsed = JSON.parse(result.stdout);
    expect(parsed.config.jobs.shardSize).toBe(500000);
    expect(parsed.bearerToken.source).toBe('$X_BEARER_TOKEN');
    expect(parsed.nextRuns).toHaveLength(5);
    const gaps = parsed.nextRuns.slice(1).map((run: string, i: number) => Date.parse(run) - Date.parse(parsed.nextRuns[i]));
    expect(new Set(gaps)).toEqual(new Set([600_000]));
    const missing = runCli(['check-config', '--config', config]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('no bearer token');
  });

  it('status shows the store, counts and migrations, as text and JSON', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' } });
    execFileSync('sqlite3', [newStore(dir), "INSERT INTO tweets (id) VALUES (1), (9007199254740993)"]);
    const text = runCli(['status', '-c', config]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/rows in tweets\s+2/);
    const json = JSON.parse(runCli(['status', '--json', '-c', config]).stdout);
    expect(json.tables).toEqual([{ name: 'tweets', rows: '2' }, { name: 'users', rows: '0' }]);
    expect(json.migrations[0].name).toBe('initial');
  });
});
