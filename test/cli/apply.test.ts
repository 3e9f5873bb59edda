import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { CLI, useTempDir, writeJson } from '../helpers/tmp.js';
import { insertTweets, makeStore, result, rowsOf, writeResults } from '../pipeline/helpers.js';

const tempDir = useTempDir();

function seededStore(dir: string, ids: string[], raw: Record<string, unknown> = {}) {
  const { db } = makeStore(dir, raw);
  insertTweets(db, ids.map((id) => ({ id, geo_lat: 1, raw_json: '{"geo":{},"k":1}' })));
  db.close();
  return path.join(dir, 'config.json');
}

function readRows(file: string, table = 'tweets') {
  const db = new Database(file, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return rowsOf(db as never, table);
  } finally {
    db.close();
  }
}

describe('compliance-sync apply', () => {
  it('is listed in --help, which explains how an interrupted apply resumes', () => {
    expect(runCli(['--help']).stdout).toContain('apply');
    const help = runCli(['apply', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--confirm-deletions');
    expect(help.stdout).toMatch(/Resuming:.*same\s+command again/s);
    expect(runCli(['apply', 'x.ndjson']).code).toBe(64); // --type is required
  });

  it('prints the summary table (or JSON) and exits 0', () => {
    const dir = tempDir();
    const config = seededStore(dir, ['1', '2', '3']);
    const file = writeResults(dir, 'r.ndjson', [result('1', 'deleted'), '', result('2', 'suspended'), result('3', 'scrub_geo'), result('4', 'deleted'), 'junk']);
    const run = runCli(['apply', '--type', 'tweets', file, '--config', config]);
    expect(run.stderr).toContain('"kind":"malformed_json"');
    expect(run.code).toBe(0);
    for (const row of [/^state\s+done$/m, /^lines read\s+6$/m, /^records\s+4$/m, /^deleted\s+1$/m, /^marked\s+1$/m, /^geo scrubbed\s+1$/m,
      /^not in store\s+1$/m, /^rejected: malformed_json\s+1$/m, /^elapsed\s+[\d.]+ s$/m, /^rows\/s\s+/m]) {
      expect(run.stdout).toMatch(row);
    }
    const again = runCli(['apply', '--type', 'tweets', file, '--config', config, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ state: 'done', runId: 2, applied: { delete: 0, mark: 1, scrub_geo: 1 }, notFound: 2 });
  });

  it('the safety gate holds (exit 1, nothing applied) until --confirm-deletions; --dry-run changes nothing', () => {
    const dir = tempDir();
    const config = seededStore(dir, ['1', '2', '3', '4']);
    const store = path.join(dir, 'store.db');
    const file = writeResults(dir, 'r.ndjson', [result('1', 'deleted'), result('2', 'deleted'), result('3', 'deleted')]);
    const before = readRows(store);
    const dry = runCli(['apply', '--type', 'tweets', file, '--config', config, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/dry run: nothing written/);
    expect(dry.stdout).toMatch(/^would be deleted\s+3$/m);
    expect(readRows(store)).toEqual(before);
    const held = runCli(['apply', '--type', 'tweets', file, '--config', config]);
    expect(held.code).toBe(1);
    expect(held.stderr).toContain('the file would delete 3 stored tweets');
    expect(held.stderr).toContain('Try: rerun with --confirm-deletions after checking the file');
    expect(readRows(store)).toEqual(before);
    const confirmed = runCli(['apply', '--type', 'tweets', file, '--config', config, '--confirm-deletions']);
    expect(confirmed.code).toBe(0);
    expect(Object.keys(readRows(store))).toEqual(['4']);
  });

  it('a bad config exits 78; a mapped column the store lacks exits 78 naming it (preflight, before anything is written)', () => {
    const dir = tempDir();
    const file = writeResults(dir, 'r.ndjson', [result('1', 'deleted')]);
    const bad = writeJson(path.join(dir, 'bad.json'), { store: { path: 'store.db' }, reconcile: { batchSize: 0 } });
    const run = runCli(['apply', '--type', 'tweets', file, '--config', bad]);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('reconcile.batchSize');
    makeStore(dir).db.close();
    const wrong = writeJson(path.join(dir, 'wrong.json'), { store: { path: 'store.db', tables: { tweets: { geoLat: 'latitude' } } } });
    const missing = runCli(['apply', '--type', 'tweets', file, '--config', wrong]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toMatch(/store\.tables\.tweets\.geoLat \(store .*\): table "tweets" has no column "latitude"/);
    expect(missing.stderr).toMatch(/^Try: /m);
  });

  it('killed between batches (SIGKILL), a rerun resumes from the checkpoint and ends as an uninterrupted run does', async () => {
    const dir = tempDir();
    // Enough batches that the kill lands mid-run: after the first checkpoint the run still has some 60 batches to go,
    // each after the 25 ms pause that lockTurn (src/store/lockPace.ts) leaves between write transactions, so at
    // least 1.5 s in which the watcher (polling every 5 ms) sends SIGKILL.
    const n = 6_000;
    const ids = Array.from({ length: n }, (_, i) => String(1500000000000000000n + BigInt(i) * 4_194_304n));
    const config = seededStore(dir, ids, { reconcile: { batchSize: 100 } });
    const store = path.join(dir, 'store.db');
    copyFileSync(store, path.join(dir, 'straight.db'));
    const reasons = ['deleted', 'suspended', 'protected', 'scrub_geo', 'suspended'];
    const lines: (object | string)[] = ids.map((id, i) => result(ids[(i * 7919) % n]!, reasons[i % 5]!));
    for (let at = 100; at < lines.length; at += 700) lines.splice(at, 0, '', '{"id":"1"');
    const killedFile = writeResults(dir, 'killed.ndjson', lines);
    const straightFile = path.join(dir, 'straight.ndjson');
    copyFileSync(killedFile, straightFile);

    const child = spawn(process.execPath, [CLI, 'apply', '--type', 'tweets', killedFile, '--config', config], { env: cleanEnv(), stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const watcher = new Database(store, { readonly: true, fileMustExist: true });
    let checkpoint = 0;
    for (let tries = 0; tries < 6000 && checkpoint === 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      try {
        checkpoint = Number(watcher.prepare(`SELECT max(checkpoint_line) FROM cs_apply_runs`).pluck().get() ?? 0);
      } catch {
        // the store may be mid-migration; poll again
      }
    }
    child.kill('SIGKILL');
    await exited;
    const run = watcher.prepare(`SELECT state, checkpoint_line FROM cs_apply_runs`).get() as { state: string; checkpoint_line: number };
    watcher.close();
    expect(run.state).toBe('running');
    expect(run.checkpoint_line).toBeGreaterThan(0);
    expect(run.checkpoint_line).toBeLessThan(lines.length);

    const resumed = runCli(['apply', '--type', 'tweets', killedFile, '--config', config, '--json']);
    expect(resumed.code).toBe(0);
    const resumedSummary = JSON.parse(resumed.stdout) as Record<string, unknown>;
    expect(resumedSummary.runId).toBe(1);

    writeJson(path.join(dir, 'straight.json'), { store: { path: 'straight.db' }, reconcile: { batchSize: 100 }, log: { level: 'warn' } });
    const straight = runCli(['apply', '--type', 'tweets', straightFile, '--config', path.join(dir, 'straight.json'), '--json']);
    expect(straight.code).toBe(0);
    const straightSummary = JSON.parse(straight.stdout) as Record<string, unknown>;
    for (const key of ['linesRead', 'records', 'applied', 'notFound', 'rejected']) expect(resumedSummary[key]).toEqual(straightSummary[key]);

    // Same rows, except compliance_at, which is each run's own as_of.
    const strip = (rows: Record<string, Record<string, unknown>>) => {
      const ats = new Set(Object.values(rows).map((r) => r.compliance_at).filter(Boolean));
      expect(ats.size).toBe(1);
      return Object.fromEntries(Object.entries(rows).map(([id, r]) => [id, { ...r, compliance_at: r.compliance_at ? 'AS_OF' : null }]));
    };
    expect(strip(readRows(store))).toEqual(strip(readRows(path.join(dir, 'straight.db'))));
    const audit = (file: string) => {
      const db = new Database(file, { readonly: true });
      const rows = db.prepare(`SELECT reason, action_taken, count FROM cs_audit_counts ORDER BY 1, 2`).all();
      db.close();
      return rows;
    };
    expect(audit(store)).toEqual(audit(path.join(dir, 'straight.db')));
    expect(readFileSync(`${killedFile}.rejects.ndjson`, 'utf8')).toBe(readFileSync(`${straightFile}.rejects.ndjson`, 'utf8'));
  });
});
