import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openMigratedStore } from '../../src/cli/context.js';
import { parseConfig } from '../../src/config/load.js';
import { createMissingIndexes } from '../../src/store/preflight.js';
import { JOB_TYPES } from '../../src/types.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { residue, snapshot, LAYOUT_SPECS } from '../helpers/layouts-check.js';
import { buildLayoutStore, LAYOUT_NAMES, layoutStoreConfig, makeArchive, scriptOutcomes, uniqueWord } from '../helpers/layouts.js';
import { useTempDir, writeJson } from '../helpers/tmp.js';
import { spawnCli, startPinnedEmulator, TOKEN, useEmulators } from '../helpers/world.js';

/**
 * Issue 12, `audit` after a real cycle: on the default layout and both collectors' layouts, `reconcile --now` against
 * the emulator (every outcome pinned by scriptOutcomes: deletions of retweeted, quoted, liked and media tweets, geo
 * scrubs, users deleted, deactivated, protected, suspended and scrubbed) with the purge and its vacuum, then the real
 * `audit --scan-bytes` finds nothing (exit 0), and an independent scan of the files for the deleted rows' unique words
 * agrees. Originals that other stored rows copy (retweets, quotes) are left out of that scan: their words live on in
 * the copies, which are not the audit's to judge here.
 */

const tempDir = useTempDir();
const emulators = useEmulators();

const env = { ...cleanEnv(), X_BEARER_TOKEN: TOKEN };

interface AuditJson {
  outcome: string;
  findings: number;
  checks: { name: string; ran: boolean; count: number; error?: string }[];
}

describe.each(LAYOUT_NAMES)('audit after a cycle on a %s store', (name) => {
  it('exits 0 with every check run and clean; the deleted rows\' words are gone from the files', { timeout: 240_000 }, async () => {
    const spec = LAYOUT_SPECS[name];
    const dir = tempDir();
    const storePath = path.join(dir, 'store.db');
    const archive = makeArchive({ tweets: 600, users: 60, seed: 11 });
    buildLayoutStore(name, storePath, archive, env);
    const before = snapshot(storePath);
    const ids = (table: string, column: string) => new Set([...before.tables.get(table)!.rows.values()].map((row) => String(row[column])));
    const stored = { tweets: ids(spec.tweets.table, spec.tweets.id), users: ids(spec.users.table, spec.users.id) };
    const pinned = scriptOutcomes(archive, stored);
      const emulator = await startPinnedEmulator(emulators, new Map([...pinned.tweets, ...pinned.users]));
    const raw = {
      store: { path: 'store.db', ...layoutStoreConfig(name) },
      api: { baseUrl: emulator.url, timeoutSeconds: 10 },
      jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 },
      reconcile: { vacuum: 'cycle' },
      log: { level: 'warn' },
    };
    const configPath = writeJson(path.join(dir, 'config.json'), raw);
    if (name !== 'default') {
      // The indexes a foreign layout needs before a cycle, made in this process by what `migrate --create-indexes`
      // runs (the command itself, on the same layouts, is layouts.test.ts's): the audit is what this test is about.
      const config = parseConfig(raw, configPath, env);
      const { db } = openMigratedStore(config);
      try {
        expect(createMissingIndexes(db, config, JOB_TYPES).length).toBeGreaterThan(0);
      } finally {
        db.close();
      }
    }

    const run = spawnCli(['reconcile', '--now', '--config', configPath], env);
    expect((await run.exit).code, run.stderr().slice(-2000)).toBe(0);

    const audit = runCli(['audit', '--scan-bytes', '--json', '--config', configPath], { env });
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
    const report = JSON.parse(audit.stdout) as AuditJson;
    expect(report.outcome).toBe('clean');
    // There was something to check: deleted IDs (with dependents on the collectors' layouts) and scrubbed tweets.
    const db = new Database(storePath, { readonly: true });
    const count = (sql: string) => Number(db.prepare(sql).pluck().get());
    expect(count("SELECT count(*) FROM cs_tombstones WHERE type = 'tweets'")).toBeGreaterThan(30);
    expect(count("SELECT count(*) FROM cs_tombstones WHERE type = 'users'")).toBeGreaterThan(2);
    expect(count('SELECT count(*) FROM cs_scrubs')).toBeGreaterThan(10);
    db.close();
    expect(report.checks.map((c) => [c.name, c.ran, c.count])).toEqual(
      ['tombstoned_rows', 'dependents', 'scrubbed_geo', 'fts_entries', 'embedded_copies', 'orphans', 'deleted_bytes', 'coverage'].map((check) => [check, true, 0]),
    );

    // The independent scan: the unique words of the deleted tweets and users that no stored row copies.
    const deletedUsers = new Set([...pinned.users].filter(([, o]) => o.reason === 'deleted' || o.reason === 'deactivated').map(([id]) => id));
    const copied = new Set(archive.tweets.flatMap((t) => [t.retweetOf, t.quoteOf].filter((id): id is string => id !== null)));
    const gone = (id: string, author: string) => (pinned.tweets.get(id)?.action === 'delete' && ['deleted', 'deactivated'].includes(pinned.tweets.get(id)!.reason)) || deletedUsers.has(author);
    const words = [
      ...archive.tweets.flatMap((t, i) => (stored.tweets.has(t.id) && !copied.has(t.id) && !t.retweetOf && gone(t.id, t.author) ? [uniqueWord('tweet', i)] : [])),
      // A user's words live on in retweets of their tweets ("RT @name: …") only as the screen name, never the bio.
      ...archive.users.flatMap((u, i) => (deletedUsers.has(u.id) && stored.users.has(u.id) ? [uniqueWord('user', i)] : [])),
    ];
    expect(words.length).toBeGreaterThan(20);
    expect(residue(storePath, words, spec.fts.map((f) => f.table))).toEqual({ inFiles: [], inFts: [] });

    // The audit is recorded: status and the report name it.
    const status = runCli(['status', '--json', '--config', configPath], { env });
    expect((JSON.parse(status.stdout) as { lastAudit: { outcome: string } }).lastAudit.outcome).toBe('clean');
  });
});
