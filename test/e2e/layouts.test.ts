import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/server.js';
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
import { buildLayoutStore, LAYOUT_NAMES, layoutStoreConfig, makeArchive, reingest, scriptOutcomes, uniqueWord, type Archive, type LayoutName } from '../helpers/layouts.js';
import { useTempDir, writeJson } from '../helpers/tmp.js';
import { spawnCli, startPinnedEmulator, TOKEN, useEmulators } from '../helpers/world.js';

/**
 * Issue 11: a store another tool wrote (test/fixtures/layouts/) is kept compliant with nothing but a config. Each
 * layout gets a full `reconcile --now` against the emulator, whose rules pin every outcome, and then an independent
 * check of every row, of the store's integrity, FKs and FTS, and of the report's counts.
 */

const tempDir = useTempDir();
const emulators = useEmulators();

const env = { ...cleanEnv(), X_BEARER_TOKEN: TOKEN };
const fileHash = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function storedIds(before: Snapshot, name: LayoutName) {
  const spec = LAYOUT_SPECS[name];
  const ids = (table: string, column: string) => new Set([...before.tables.get(table)!.rows.values()].map((row) => String(row[column])));
  return { tweets: ids(spec.tweets.table, spec.tweets.id), users: ids(spec.users.table, spec.users.id) };
}

/** Copies a closed store: the file, and its WAL if the last writer left one. */
function copyStore(from: string, to: string): void {
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

// What the file builds once and removes at its end: the collectors' stores and the cycles the tests share.
const shared = { dir: '', emulators: [] as Emulator[] };
beforeAll(() => {
  shared.dir = mkdtempSync(path.join(tmpdir(), 'cs-test-'));
});
afterAll(async () => {
  for (const emulator of shared.emulators.splice(0)) await emulator.close();
  rmSync(shared.dir, { recursive: true, force: true });
});

/**
 * Each layout's store as its collector leaves it (one archive, 1200 tweets and 120 users: enough that the scripted
 * outcomes reach every hard case), built once per file. Tests get their own copy of the file.
 */
const collected = new Map<LayoutName, { storePath: string; archive: Archive; original: Snapshot }>();
function collectorStore(name: LayoutName) {
  let store = collected.get(name);
  if (!store) {
    const storePath = path.join(mkdtempSync(path.join(shared.dir, `${name}-`)), 'store.db');
    const archive = makeArchive({ tweets: 1200, users: 120, seed: 11 });
    buildLayoutStore(name, storePath, archive, env);
    store = { storePath, archive, original: snapshot(storePath) };
    collected.set(name, store);
  }
  return store;
}

/** A copy of the layout's collected store in `dir`, the emulator with every outcome pinned, and the config. */
async function layoutWorld(name: LayoutName, dir: string, emulatorList: Emulator[]) {
  const { storePath: collectedPath, archive, original } = collectorStore(name);
  const storePath = path.join(dir, 'store.db');
  copyStore(collectedPath, storePath);
  const pinned = scriptOutcomes(archive, storedIds(original, name));
  const emulator = await startPinnedEmulator(emulatorList, new Map([...pinned.tweets, ...pinned.users]));
  const configPath = writeJson(path.join(dir, 'config.json'), {
    store: { path: 'store.db', ...layoutStoreConfig(name) },
    api: { baseUrl: emulator.url, timeoutSeconds: 10 },
    jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 },
    log: { level: 'info' },
  });
  const results: Results = { tweets: new Map(pinned.tweets), users: new Map(pinned.users) };
  return { dir, storePath, archive, original, results, configPath, emulator };
}

/**
 * The session of a user who keeps a collector's store compliant, run once per layout and read by several tests: the
 * preflight, status and report on the store as the collector left it, `migrate --create-indexes`, the preflight
 * again, `reconcile --now`, and the report. Each step's outcome is kept for the tests to check.
 */
const sessions = new Map<LayoutName, ReturnType<typeof runSession>>();
const sessionOf = (name: LayoutName) => {
  if (!sessions.has(name)) sessions.set(name, runSession(name));
  return sessions.get(name)!;
};
async function runSession(name: LayoutName) {
  const w = await layoutWorld(name, mkdtempSync(path.join(shared.dir, `${name}-session-`)), shared.emulators);
  const untouched = fileHash(w.storePath);
  // Read-only commands, side by side: whatever one of them wrote, the hash taken after all three shows it.
  const reader = async (args: string[]) => {
    const run = spawnCli([...args, '--config', w.configPath], env);
    return { code: (await run.exit).code, stdout: run.stdout(), stderr: run.stderr() };
  };
  const [firstLook, status, firstReport] = await Promise.all([reader(['check-config', '--store']), reader(['status']), reader(['report'])]);
  const afterReads = fileHash(w.storePath);
  const indexes = runCli(['migrate', '--create-indexes', '--config', w.configPath], { env });
  const preflight = runCli(['check-config', '--store', '--config', w.configPath], { env });
  const before = snapshot(w.storePath);
  const run = spawnCli(['reconcile', '--now', '--config', w.configPath], env);
  const reconcile = { code: (await run.exit).code, stderr: run.stderr() };
  const report = runCli(['report', '--format', 'json', '--config', w.configPath], { env });
  // What the pinned results must have made of the store, from the rows before the cycle alone.
  const expected = expectedStore(LAYOUT_SPECS[name], before, w.results);
  return { w, untouched, firstLook, status, firstReport, afterReads, indexes, preflight, before, reconcile, report, expected };
}

describe.each(LAYOUT_NAMES)('a %s store kept compliant with only a config', (name) => {
  const spec = LAYOUT_SPECS[name];
  beforeAll(async () => {
    await sessionOf(name);
  }, 180_000);

  it('the preflight, status and report only read; on a foreign layout the preflight refuses only for the indexes the work needs, until migrate --create-indexes', async () => {
    const s = await sessionOf(name);
    // Preflight is read-only: the store file stays byte for byte what the collector left. On a foreign layout it
    // may refuse only for the indexes the work needs, naming the CREATE INDEX.
    if (name === 'default') expect(s.firstLook.code, s.firstLook.stderr).toBe(0);
    else {
      expect(s.firstLook.code, s.firstLook.stderr).toBe(78);
      expect(s.firstLook.stdout).toMatch(/MISSING .*CREATE INDEX IF NOT EXISTS "cs_idx_/);
      expect(s.firstLook.stderr).toMatch(/Try: .*CREATE INDEX|Try: compliance-sync migrate --create-indexes/);
    }
    // Whatever they answer before a ledger exists, status and report only read.
    expect(s.status.code).toBe(0);
    expect(s.afterReads).toBe(s.untouched);

    // The indexes the work needs, by the opt-in command; then the preflight passes. Rows stay as they were.
    expect(s.indexes.code, s.indexes.stderr).toBe(0);
    expect(s.preflight.code, s.preflight.stderr).toBe(0);
    expect(JSON.stringify([...s.before.tables].map(([t, v]) => [t, [...v.rows]]))).toBe(JSON.stringify([...s.w.original.tables].map(([t, v]) => [t, [...v.rows]])));
  });

  it('reconcile --now applies every result to the row, its dependents and its FTS entries', async () => {
    const { w, before, reconcile, expected } = await sessionOf(name);
    expect(reconcile.stderr).not.toMatch(/FOREIGN KEY constraint failed|foreign key mismatch/);
    expect(reconcile.code, reconcile.stderr.slice(-2000)).toBe(0);

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
  });

  it("the report counts the cycle's deletions, the issue-12 cases under their own causes", async () => {
    const { report, expected } = await sessionOf(name);
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
    // The store after the twitter-to-sqlite session's cycle (migrate --create-indexes, reconcile --now), copied.
    const { w: session, indexes, reconcile } = await sessionOf('twitter-to-sqlite');
    expect(indexes.code).toBe(0);
    expect(reconcile.code, reconcile.stderr.slice(-2000)).toBe(0);
    const storePath = path.join(tempDir(), 'store.db');
    copyStore(session.storePath, storePath);
    const marked = sideTableMarks(storePath);
    const markedTweets = session.archive.tweets.filter((t) => marked.has(`tweets:${t.id}`));
    expect(markedTweets.length).toBeGreaterThan(5);

    // A later collection run writes the same tweets again (and their authors, nested tweets, media) the collector's way.
    reingest('twitter-to-sqlite', storePath, session.archive, markedTweets);
    const after = sideTableMarks(storePath);
    for (const tweet of markedTweets) expect(after.get(`tweets:${tweet.id}`)).toEqual(marked.get(`tweets:${tweet.id}`));
    expect(storeIntegrity(spec, storePath)).toEqual([]);
  });
});

describe('a bad mapping of a foreign store', () => {
  it.each(['twitter-to-sqlite', 'twint'] as const)('%s with the default mapping: refused before any API call, naming the key, the store untouched', async (name) => {
    const w = await layoutWorld(name, tempDir(), emulators);
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
