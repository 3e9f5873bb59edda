import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseConfig, type Config } from '../../src/config/load.js';
import { DEFAULT_POLICY } from '../../src/config/schema.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/server.js';
import { outcomeFor, type OutcomeMix, type OutcomeRules } from '../../src/emulator/outcomes.js';
import { createLogger } from '../../src/log.js';
import { seedStore } from '../../src/store/demoData.js';
import { createStore } from '../../src/store/migrate.js';
import type { Db } from '../../src/store/open.js';
import { afterEach } from 'vitest';
import type { Runtime } from '../../src/pipeline/runtime.js';
import { cleanEnv } from './cli.js';
import { CLI, writeJson } from './tmp.js';

export const TOKEN = 'test-token-7f3a';
export const SEED = 'world-seed';

export interface World {
  dir: string;
  storePath: string;
  configPath: string;
  config: Config;
  emulator: Emulator;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** A seeded store, the emulator on loopback, and a config pointing one at the other. */
export async function makeWorld(
  dir: string,
  options: { tweets?: number; users?: number; emulator?: EmulatorOptions; config?: Record<string, unknown>; seedNumber?: number } = {},
): Promise<World> {
  const storePath = path.join(dir, 'store.db');
  const db = createStore(storePath);
  seedStore(db, { tweets: options.tweets ?? 3000, users: options.users ?? 300, seed: options.seedNumber ?? 7 });
  db.close();
  // A generous rate limit unless a test sets X's own (150 / 15 min): the client adopts what the server states.
  const emulator = await startEmulator({ token: TOKEN, seed: SEED, processingMs: 50, rateLimit: { limit: 100_000 }, ...options.emulator });
  const raw = {
    store: { path: 'store.db' },
    api: { baseUrl: emulator.url, timeoutSeconds: 10 },
    jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 },
    log: { level: 'info' },
    ...options.config,
  };
  const configPath = writeJson(path.join(dir, 'config.json'), raw);
  const env = { ...cleanEnv(), X_BEARER_TOKEN: TOKEN };
  return {
    dir,
    storePath,
    configPath,
    config: parseConfig(raw, configPath, env),
    emulator,
    env,
    close: () => emulator.close(),
  };
}

export const quietLogger = () => createLogger('silent');

/** Spawned daemons and their worlds: after each test the daemons still running are killed, then the worlds closed. */
export function useDaemonWorlds(): { worlds: World[]; daemons: Spawned[] } {
  const worlds: World[] = [];
  const daemons: Spawned[] = [];
  afterEach(async () => {
    for (const daemon of daemons.splice(0)) {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
      await daemon.exit;
    }
    for (const world of worlds.splice(0)) await world.close();
  });
  return { worlds, daemons };
}

/** The worlds (and their runtimes) a test opens: push them here and they are closed after each test. */
export function useOpenWorlds(): { world: World; runtime?: Runtime }[] {
  const open: { world: World; runtime?: Runtime }[] = [];
  afterEach(async () => {
    for (const { world, runtime } of open.splice(0)) {
      runtime?.close();
      await world.close();
    }
  });
  return open;
}

/** Emulators a test starts and pushes here are closed after it. */
export function useEmulators(): Emulator[] {
  const emulators: Emulator[] = [];
  afterEach(async () => {
    for (const emulator of emulators.splice(0)) await emulator.close();
  });
  return emulators;
}

/** An outcome mix that draws nothing: only the emulator's pinned rules need action. */
export const NO_MIX = { deleted: 0, protected: 0, suspended: 0, deactivated: 0, scrub_geo: 0 };

/**
 * An emulator whose outcomes are the pinned `rules` alone (every other ID compliant), jobs complete on the first read
 * after their upload, and no rate limit in the way; pushed to `emulators` to be closed after the test.
 */
export async function startPinnedEmulator(emulators: Emulator[], rules: OutcomeRules): Promise<Emulator> {
  const emulator = await startEmulator({ token: TOKEN, seed: SEED, processingMs: 0, rateLimit: { limit: 100_000 }, mix: NO_MIX, rules });
  emulators.push(emulator);
  return emulator;
}

/** What the store holds, reduced to what compliance changes, in a comparable form. */
export interface StoreView {
  tweets: Map<string, { state: string | null; geo: boolean; rawGeo: boolean }>;
  users: Map<string, { state: string | null }>;
}

export function viewStore(db: Db): StoreView {
  const tweets = new Map<string, { state: string | null; geo: boolean; rawGeo: boolean }>();
  for (const row of db.prepare('SELECT id, compliance_state, geo_lat, place_id, raw_json FROM tweets').all() as Record<string, unknown>[]) {
    const raw = JSON.parse(String(row.raw_json)) as Record<string, unknown>;
    tweets.set(String(row.id), {
      state: (row.compliance_state as string | null) ?? null,
      geo: row.geo_lat !== null || row.place_id !== null,
      rawGeo: 'geo' in raw || 'coordinates' in raw || 'place' in raw,
    });
  }
  const users = new Map<string, { state: string | null }>();
  for (const row of db.prepare('SELECT id, compliance_state FROM users').all() as Record<string, unknown>[]) {
    users.set(String(row.id), { state: (row.compliance_state as string | null) ?? null });
  }
  return { tweets, users };
}

/**
 * The store docs/architecture.md#what-a-result-does-to-the-store says the emulator's outcomes lead to, computed from the seeded store and outcomeFor alone.
 * Marks are compared as "marked or not": when a tweet is reported and its author too, the two cycles may apply in
 * either order, and either mark hides it.
 */
export function expectedView(before: StoreView, authors: Map<string, string>, rules: { tweets?: OutcomeRules; users?: OutcomeRules } = {}, mix?: Partial<OutcomeMix>): StoreView {
  const effect = (type: 'tweets' | 'users', id: string) => {
    const outcome = outcomeFor(type, id, SEED, mix, rules[type]);
    if (!outcome) return null;
    if (outcome.action === 'scrub_geo') return 'scrub_geo';
    return DEFAULT_POLICY[outcome.reason] ?? (outcome.action === 'delete' ? 'delete' : null);
  };
  const users = new Map<string, { state: string | null }>();
  const userEffect = new Map<string, string | null>();
  for (const [id, row] of before.users) {
    const e = effect('users', id);
    userEffect.set(id, e);
    if (e === 'delete') continue;
    users.set(id, { state: e === 'mark' ? 'marked' : row.state });
  }
  const tweets = new Map<string, { state: string | null; geo: boolean; rawGeo: boolean }>();
  for (const [id, row] of before.tweets) {
    const own = effect('tweets', id);
    const author = userEffect.get(authors.get(id) ?? '') ?? null;
    if (own === 'delete' || author === 'delete') continue;
    const scrub = own === 'scrub_geo' || author === 'scrub_geo';
    tweets.set(id, {
      state: own === 'mark' || author === 'mark' ? 'marked' : row.state,
      geo: scrub ? false : row.geo,
      rawGeo: scrub ? false : row.rawGeo,
    });
  }
  return { tweets, users };
}

/** A view with every mark reduced to "marked", for comparison with expectedView. */
export function normalize(view: StoreView): StoreView {
  const mark = (state: string | null) => (state === null ? null : 'marked');
  return {
    tweets: new Map([...view.tweets].map(([id, row]) => [id, { ...row, state: mark(row.state) }])),
    users: new Map([...view.users].map(([id, row]) => [id, { state: mark(row.state) }])),
  };
}

export function authorsOf(db: Db): Map<string, string> {
  return new Map(
    (db.prepare('SELECT id, author_id FROM tweets').all() as { id: bigint; author_id: bigint }[]).map((row) => [String(row.id), String(row.author_id)]),
  );
}

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the built CLI without blocking the event loop (the in-process emulator must keep answering). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Spawned {
  const child = spawn(process.execPath, [CLI, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Resolves when `predicate` holds for the output so far (checked on every chunk); rejects if the process ends first. */
export function waitForOutput(spawned: Spawned, predicate: (text: string) => boolean, stream: 'stdout' | 'stderr' = 'stderr'): Promise<void> {
  return new Promise((resolve, reject) => {
    const read = stream === 'stdout' ? spawned.stdout : spawned.stderr;
    if (predicate(read())) return resolve();
    const onData = () => {
      if (predicate(read())) {
        spawned.child[stream]!.off('data', onData);
        resolve();
      }
    };
    spawned.child[stream]!.on('data', onData);
    void spawned.exit.then(() => (predicate(read()) ? resolve() : reject(new Error(`process ended before the expected output:\n${read().slice(-2000)}`))));
  });
}
