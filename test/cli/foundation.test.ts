import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, useTempDir, writeJson } from '../helpers/tmp.js';

const tempDir = useTempDir();

function columns(file: string, table: string): string[] {
  return execFileSync('sqlite3', [file, `SELECT name FROM pragma_table_info('${table}') ORDER BY cid`], { encoding: 'utf8' })
    .trim()
    .split('\n');
}

describe('compliance-sync CLI (foundation)', () => {
  it('--help lists the commands and --version prints the version', () => {
    const help = runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['migrate', 'check-config', 'status']) expect(help.stdout).toContain(command);
    expect(runCli(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('an unknown command or option is a usage error (64)', () => {
    expect(runCli(['frobnicate']).code).toBe(64);
    expect(runCli(['status', '--frob']).code).toBe(64);
  });

  it('migrate --create creates the default schema (seen by the sqlite3 shell) and migrate is idempotent', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'new/store.db' } });
    const first = runCli(['migrate', '--create', '--config', config]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('applied 0001_initial');
    const store = path.join(dir, 'new/store.db');
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
    expect(runCli(['migrate', '--create', '-c', config]).code).toBe(0);
    execFileSync('sqlite3', [path.join(dir, 'store.db'), 'PRAGMA user_version = 42']);
    const result = runCli(['migrate', '-c', config]);
    expect(result.code).toBe(1);
    const latest = readdirSync(path.join(REPO_ROOT, 'migrations')).filter((name) => /^\d{4}_\w+\.sql$/.test(name)).length;
    expect(result.stderr).toMatch(new RegExp(`version 42.*version ${latest}\\)`));
    expect(result.stderr).toMatch(/^Try: /m);
  });

  it.each([
    [{ jobs: { shardSize: 0 } }, 'jobs.shardSize'],
    [{ unknownKey: true }, 'unknownKey'],
    [{ schedule: { cron: '61 * * * *' } }, 'schedule.cron'],
    [{ tables: { tweets: { table: 'tweets; DROP TABLE users' } } }, 'store.tables.tweets.table'],
  ])('a bad config (%j) exits 78 and names the field', (patch, field) => {
    const dir = tempDir();
    const { tables, ...rest } = patch as { tables?: unknown };
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db', ...(tables ? { tables } : {}) }, ...rest });
    for (const command of ['check-config', 'migrate', 'status']) {
      const result = runCli([command, '--config', config], { env: { X_BEARER_TOKEN: 't' } });
      expect(result.code).toBe(78);
      expect(result.stderr).toContain(field);
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
    expect(runCli(['migrate', '--create', '-c', config]).code).toBe(0);
    execFileSync('sqlite3', [path.join(dir, 'store.db'), "INSERT INTO tweets (id) VALUES (1), (9007199254740993)"]);
    const text = runCli(['status', '-c', config]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/rows in tweets\s+2/);
    const json = JSON.parse(runCli(['status', '--json', '-c', config]).stdout);
    expect(json.tables).toEqual([{ name: 'tweets', rows: '2' }, { name: 'users', rows: '0' }]);
    expect(json.migrations[0].name).toBe('initial');
  });
});
