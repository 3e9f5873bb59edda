import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, insertTweets, insertUsers, makeStore, result, writeResults } from '../pipeline/helpers.js';

const tempDir = useTempDir();
const BIG = '1234567890123456789';

async function storeWithTombstones() {
  const dir = tempDir();
  const { db, config } = makeStore(dir);
  insertUsers(db, ['7']);
  insertTweets(db, [{ id: '10' }, { id: BIG }, { id: '12', author_id: '7' }]);
  await apply(db, config, 'tweets', writeResults(dir, 't.jsonl', [result('10', 'deleted'), result(BIG, 'deleted')]));
  await apply(db, config, 'users', writeResults(dir, 'u.jsonl', [result('7', 'deactivated')]));
  // A later deletion, to filter on.
  db.prepare("UPDATE cs_tombstones SET deleted_at = '2026-03-01T00:00:00.000Z' WHERE id = 10").run();
  db.close();
  return { dir, configPath: path.join(dir, 'config.json') };
}

describe('compliance-sync tombstones export', () => {
  it('ndjson by default: every tombstone with type, exact ID, reason and time; no content', async () => {
    const { configPath } = await storeWithTombstones();
    const out = runCli(['tombstones', 'export', '--config', configPath], { env: cleanEnv() });
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { type: 'tweets', id: '10', reason: 'deleted', deletedAt: '2026-03-01T00:00:00.000Z' },
      { type: 'tweets', id: '12', reason: 'author_deactivated', deletedAt: '2026-01-02T03:04:05.000Z' },
      { type: 'tweets', id: BIG, reason: 'deleted', deletedAt: '2026-01-02T03:04:05.000Z' },
      { type: 'users', id: '7', reason: 'deactivated', deletedAt: '2026-01-02T03:04:05.000Z' },
    ]);
  });

  it('--format ids --type --since --out: bare IDs of one type into a file', async () => {
    const { dir, configPath } = await storeWithTombstones();
    const file = path.join(dir, 'gone.txt');
    const out = runCli(['tombstones', 'export', '--type', 'tweets', '--format', 'ids', '--since', '2026-02-01', '--out', file, '--config', configPath], { env: cleanEnv() });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toBe('10\n');
    expect(out.stderr).toMatch(/1 tombstones written to/);
    expect(existsSync(`${file}.partial`)).toBe(false);
    const all = runCli(['tombstones', 'export', '--type', 'tweets', '--format', 'ids', '--config', configPath], { env: cleanEnv() });
    expect(all.stdout).toBe(`10\n12\n${BIG}\n`);
  });

  it('bare IDs of both types would be ambiguous: a usage error with a Try', async () => {
    const { configPath } = await storeWithTombstones();
    const out = runCli(['tombstones', 'export', '--format', 'ids', '--config', configPath], { env: cleanEnv() });
    expect(out.code).toBe(64);
    expect(out.stderr).toMatch(/--type/);
    expect(out.stderr).toMatch(/Try: /);
  });
});
