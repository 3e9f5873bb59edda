import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyLockBase } from '../../src/cli/apply.js';
import { createStore } from '../../src/store/migrate.js';
import { acquireRunLock } from '../../src/store/runLock.js';
import { runCli } from '../helpers/cli.js';
import { useTempDir, writeJson } from '../helpers/tmp.js';
import { result, writeResults } from '../pipeline/helpers.js';

const tempDir = useTempDir();

function sqlite(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

describe('compliance-sync apply: what it must not do', () => {
  it('--dry-run on an existing store with its own schema writes nothing: no ledger tables, journal mode kept', () => {
    const dir = tempDir();
    const store = path.join(dir, 'archive.db');
    sqlite(store, 'CREATE TABLE posts (pid INTEGER PRIMARY KEY, state TEXT, why TEXT, at TEXT); INSERT INTO posts (pid) VALUES (1), (2), (3);');
    const config = writeJson(path.join(dir, 'config.json'), {
      store: {
        path: 'archive.db',
        tables: {
          tweets: { table: 'posts', id: 'pid', authorId: null, geoLat: null, geoLon: null, placeId: null, rawJson: null, complianceState: 'state', complianceReason: 'why', complianceAt: 'at' },
        },
      },
    });
    const file = writeResults(dir, 'r.ndjson', [result('1', 'deleted'), result('2', 'protected')]);
    const run = runCli(['apply', '--type', 'tweets', file, '--dry-run', '--config', config]);
    expect(run.code).toBe(0);
    expect(sqlite(store, '.tables')).toBe('posts');
    expect(sqlite(store, 'PRAGMA journal_mode')).toBe('delete');
    expect(sqlite(store, 'SELECT count(*) FROM posts WHERE state IS NULL')).toBe('3');
  });

  it('does not resume a stopped run of an earlier file found at the same path', () => {
    const dir = tempDir();
    const store = path.join(dir, 'store.db');
    const db = createStore(store);
    db.exec('INSERT INTO tweets (id) VALUES (110), (111), (112), (113)');
    // A run of last week's file, stopped after its first two lines.
    db.prepare("INSERT INTO cs_apply_runs (type, source, source_identity, state, as_of, checkpoint_line, started_at) VALUES ('tweets', ?, 'old:0:0', 'running', '2026-01-01T00:00:00Z', 2, '2026-01-01T00:00:00Z')").run(
      path.join(dir, 'r.ndjson'),
    );
    db.close();
    const file = writeResults(dir, 'r.ndjson', [result('110', 'deleted'), result('111', 'deleted')]);
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' }, reconcile: { maxDeleteFraction: 1 } });
    const run = runCli(['apply', '--type', 'tweets', file, '--config', config]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('earlier file at this path; starting over');
    expect(sqlite(store, 'SELECT group_concat(id) FROM tweets')).toBe('112,113');
  });

  it('refuses a second apply of a file while one runs (exit 75)', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' } });
    const file = writeResults(dir, 'r.ndjson', [result('1', 'deleted')]);
    expect(runCli(['migrate', '--create', '--config', config]).code).toBe(0);
    // Hold the file's lock as a running apply would (this test process is alive).
    const lock = acquireRunLock(applyLockBase(path.join(dir, 'store.db'), file), `apply ${file}`);
    try {
      const run = runCli(['apply', '--type', 'tweets', file, '--config', config]);
      expect(run.code).toBe(75);
      expect(run.stderr).toMatch(/in use by apply /);
    } finally {
      lock.release();
    }
  });
});
