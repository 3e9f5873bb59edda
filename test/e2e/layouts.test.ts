import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/server.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import {
  checkStore,
  expectedDeletions,
  expectedStore,
  ftsResidue,
  LAYOUT_SPECS,
  reportedCauses,
  residue,
  reportedDeletions,
  sideTableMarks,
  storeIntegrity,
  snapshot,
  type Results,
  type Snapshot,
} from '../helpers/layouts-check.js';
import { buildLayoutStore, LAYOUT_NAMES, layoutStoreConfig, makeArchive, reingest, scriptOutcomes, uniqueWord, type LayoutName } from '../helpers/layouts.js';
import { useTempDir, writeJson } from '../helpers/tmp.js';
import { SEED, spawnCli, TOKEN } from '../helpers/world.js';

/**
 * Issue 11: a store another tool wrote (test/fixtures/layouts/) is kept compliant with nothing but a config. Each
 * layout gets a full `reconcile --now` against the emulator, whose rules pin every outcome, and then an independent
 * check of every row, of the store's integrity, FKs and FTS, and of the report's counts.
 */

const tempDir = useTempDir();
const emulators: Emulator[] = [];
afterEach(async () => {
  for (const emulator of emulators.splice(0)) await emulator.close();
});

const NO_MIX = { deleted: 0, protected: 0, suspended: 0, deactivated: 0, scrub_geo: 0 };
const env = { ...cleanEnv(), X_BEARER_TOKEN: TOKEN };
const fileHash = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function storedIds(before: Snapshot, name: LayoutName) {
  const spec = LAYOUT_SPECS[name];
  const ids = (table: string, column: string) => new Set([...before.tables.get(table)!.rows.values()].map((row) => String(row[column])));
  return { tweets: ids(spec.tweets.table, spec.tweets.id), users: ids(spec.users.table, spec.users.id) };
}

async function layoutWorld(name: LayoutName, size: { tweets: number; users: number }) {
  const dir = tempDir();
  const storePath = path.join(dir, 'store.db');
  const archive = makeArchive({ ...size, seed: 11 });
  buildLayoutStore(name, storePath, archive, env);
  const original = snapshot(storePath);
  const pinned = scriptOutcomes(archive, storedIds(original, name));
  const emulator = await startEmulator({
    token: TOKEN,
    seed: SEED,
    processingMs: 50,
    rateLimit: { limit: 100_000 },
    mix: NO_MIX,
    rules: new Map([...pinned.tweets, ...pinned.users]),
  });
  emulators.push(emulator);
  const configPath = writeJson(path.join(dir, 'config.json'), {
    store: { path: 'store.db', ...layoutStoreConfig(name) },
    api: { baseUrl: emulator.url, timeoutSeconds: 10 },
    jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 },
    log: { level: 'info' },
  });
  const results: Results = { tweets: new Map(pinned.tweets), users: new Map(pinned.users) };
  return { dir, storePath, archive, original, results, configPath, emulator };
}

describe.each(LAYOUT_NAMES)('a %s store kept compliant with only a config', (name) => {
  it('reconcile --now applies every result to the row, its dependents, its FTS entries and the report', { timeout: 180_000 }, async () => {
    const spec = LAYOUT_SPECS[name];
    const w = await layoutWorld(name, { tweets: 1200, users: 120 });

    // Preflight is read-only: the store file stays byte for byte what the collector left. On a foreign layout it
    // may refuse only for the indexes the work needs, naming the CREATE INDEX.
    const untouched = fileHash(w.storePath);
    const firstLook = runCli(['check-config', '--store', '--config', w.configPath], { env });
    if (name === 'default') expect(firstLook.code, firstLook.stderr).toBe(0);
    else {
      expect(firstLook.code, firstLook.stderr).toBe(78);
      expect(firstLook.stdout).toMatch(/MISSING .*CREATE INDEX IF NOT EXISTS "cs_idx_/);
      expect(firstLook.stderr).toMatch(/Try: .*CREATE INDEX|Try: compliance-sync migrate --create-indexes/);
    }
    // Whatever they answer before a ledger exists, status and report only read.
    expect(runCli(['status', '--config', w.configPath], { env }).code).toBe(0);
    runCli(['report', '--config', w.configPath], { env });
    expect(fileHash(w.storePath)).toBe(untouched);

    // The indexes the work needs, by the opt-in command; then the preflight passes. Rows stay as they were.
    const indexes = runCli(['migrate', '--create-indexes', '--config', w.configPath], { env });
    expect(indexes.code, indexes.stderr).toBe(0);
    const preflight = runCli(['check-config', '--store', '--config', w.configPath], { env });
    expect(preflight.code, preflight.stderr).toBe(0);
    const before = snapshot(w.storePath);
    expect(JSON.stringify([...before.tables].map(([t, s]) => [t, [...s.rows]]))).toBe(JSON.stringify([...w.original.tables].map(([t, s]) => [t, [...s.rows]])));

    const run = spawnCli(['reconcile', '--now', '--config', w.configPath], env);
    const { code } = await run.exit;
    expect(run.stderr()).not.toMatch(/FOREIGN KEY constraint failed|foreign key mismatch/);
    expect(code, run.stderr().slice(-2000)).toBe(0);

    const expected = expectedStore(spec, before, w.results);
    // The scripted outcomes reach the hard cases: rows gone from the main tables and from their dependents.
    expect(expected.diff.get(spec.tweets.table)!.deleted).toBeGreaterThan(50);
    for (const relation of spec.relations) expect(expected.diff.get(relation.table)!.deleted + expected.diff.get(relation.table)!.changed).toBeGreaterThan(0);

    expect(checkStore(spec, w.storePath, { ...before, schema: w.original.schema }, expected)).toEqual([]);
    const words = [
      ...w.archive.tweets.map((t, i) => ({ kind: 'tweets' as const, id: t.id, word: uniqueWord('tweet', i) })),
      ...w.archive.users.map((u, i) => ({ kind: 'users' as const, id: u.id, word: uniqueWord('user', i) })),
    ];
    expect(ftsResidue(spec, w.storePath, words, expected)).toEqual([]);
    // Issue 12: no copy, pointer or embedded copy of a deleted tweet, no embedded geo of a scrubbed one, no orphan.
    expect(residue(w.storePath, [], [], { spec, deleted: expected.deletedIds.tweets, scrubbed: expected.scrubbedIds }).inRows).toEqual([]);

    const report = runCli(['report', '--format', 'json', '--config', w.configPath], { env });
    expect(report.code).toBe(0);
    expect(Object.fromEntries(reportedDeletions(JSON.parse(report.stdout)))).toEqual(Object.fromEntries(expectedDeletions(expected)));
    // The cycle met the issue-12 cases of its layout, and the report counts them under their own causes.
    const causes = reportedCauses(JSON.parse(report.stdout));
    if (name === 'default') {
      expect(causes.get('tweets:deleted:copy')).toBeGreaterThan(0);
      expect(causes.get('tweets:updated:embed')).toBeGreaterThan(0);
    } else if (name === 'twitter-to-sqlite') {
      expect(causes.get('tweets:deleted:copy')).toBeGreaterThan(0);
      expect(causes.get('media:deleted:orphan')).toBe(expected.diff.get('media')!.deleted);
    }
  });
});

describe('marks without compliance columns', () => {
  it("survive the collector's INSERT OR REPLACE of the marked rows (twitter-to-sqlite, recursive triggers on)", { timeout: 180_000 }, async () => {
    const spec = LAYOUT_SPECS['twitter-to-sqlite'];
    const w = await layoutWorld('twitter-to-sqlite', { tweets: 400, users: 40 });
    expect(runCli(['migrate', '--create-indexes', '--config', w.configPath], { env }).code).toBe(0);
    const run = spawnCli(['reconcile', '--now', '--config', w.configPath], env);
    expect((await run.exit).code, run.stderr().slice(-2000)).toBe(0);
    const marked = sideTableMarks(w.storePath);
    const markedTweets = w.archive.tweets.filter((t) => marked.has(`tweets:${t.id}`));
    expect(markedTweets.length).toBeGreaterThan(5);

    // A later collection run writes the same tweets again (and their authors, nested tweets, media) the collector's way.
    reingest('twitter-to-sqlite', w.storePath, w.archive, markedTweets);
    const after = sideTableMarks(w.storePath);
    for (const tweet of markedTweets) expect(after.get(`tweets:${tweet.id}`)).toEqual(marked.get(`tweets:${tweet.id}`));
    expect(storeIntegrity(spec, w.storePath)).toEqual([]);
  });
});

describe('a bad mapping of a foreign store', () => {
  it.each(['twitter-to-sqlite', 'twint'] as const)('%s with the default mapping: refused before any API call, naming the key, the store untouched', async (name) => {
    const w = await layoutWorld(name, { tweets: 200, users: 20 });
    // What a new user tries first: no store.tables at all.
    const configPath = writeJson(path.join(w.dir, 'config-default-mapping.json'), {
      store: { path: 'store.db' },
      api: { baseUrl: w.emulator.url, timeoutSeconds: 10 },
      jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 },
    });
    const untouched = fileHash(w.storePath);
    const run = spawnCli(['reconcile', '--now', '--config', configPath], env);
    const { code } = await run.exit;
    expect(code, run.stderr().slice(-2000)).toBe(78);
    expect(run.stderr()).toMatch(/store\.tables\.tweets\.\w+/);
    expect(run.stderr()).toMatch(/Try: /);
    expect(w.emulator.stats().jobsCreated).toEqual({ tweets: 0, users: 0 });
    expect(fileHash(w.storePath)).toBe(untouched);
    expect(existsSync(`${w.storePath}-wal`)).toBe(false);
  });
});
