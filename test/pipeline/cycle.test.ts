import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Id } from '../../src/types.js';
import { parseConfig } from '../../src/config/load.js';
import { outcomeFor, type OutcomeRules } from '../../src/emulator/outcomes.js';
import { runCycle, runCycles } from '../../src/pipeline/cycle.js';
import { newJobName } from '../../src/pipeline/jobNames.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/open.js';
import { ComplianceClient } from '../../src/xapi/client.js';
import { FakeClock } from '../helpers/fakeClock.js';
import { useTempDir } from '../helpers/tmp.js';
import { authorsOf, expectedView, makeWorld, normalize, quietLogger, SEED, TOKEN, viewStore, useOpenWorlds } from '../helpers/world.js';

const tempDir = useTempDir();
const open = useOpenWorlds();

async function setup(options: Parameters<typeof makeWorld>[1] = {}, clock?: FakeClock) {
  const world = await makeWorld(tempDir(), clock ? { ...options, emulator: { clock: () => clock.now().getTime(), ...options.emulator } } : options);
  const before = (() => {
    const db = openStore(world.storePath);
    const view = viewStore(db);
    const authors = authorsOf(db);
    db.close();
    return { view, authors };
  })();
  const runtime = openRuntime(world.config, quietLogger(), world.env, { clock });
  open.push({ world, runtime });
  return { world, runtime, before };
}

describe('cycle engine against the emulator', () => {
  it('brings the store to what the outcomes dictate, with several shards per type and one job per shard', async () => {
    // Five tweet shards and one user shard; the store's size is not what is tested.
    const { world, runtime, before } = await setup({ tweets: 1500, users: 150, config: { jobs: { shardSize: 350, pollIntervalSeconds: 0.1 } } });
    const controller = new AbortController();
    const summaries = await runCycles(runtime.context(controller.signal), ['tweets', 'users'], { trigger: 'manual' });
    expect(summaries.map((s) => s.state)).toEqual(['closed', 'closed']);
    // A daemon shares one signal across months of requests: none may leave a listener on it.
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(summaries[0]!.shards.total).toBe(5);
    expect(summaries[0]!.jobsUsed).toBe(5);
    expect(summaries[1]!.jobsUsed).toBe(1);
    expect(world.emulator.stats().jobsCreated).toEqual({ tweets: 5, users: 1 });
    const after = normalize(viewStore(runtime.db));
    expect(after).toEqual(expectedView(before.view, before.authors));
    // The cycle's files are gone once it closed.
    expect(runtime.ledger.recentCycles(2).every((c) => c.state === 'closed')).toBe(true);
  });

  it('survives 5xx, 429 storms, failed jobs, cut downloads and rejected uploads with the same final store', async () => {
    // The retries, backoffs, rate-limit waits and polls pass on a fake clock the emulator shares.
    const clock = new FakeClock();
    const { world, runtime, before } = await setup({
      tweets: 2500,
      users: 250,
      emulator: { rateLimit: { limit: 150 }, faults: { api5xx: 0.2, rate429: 0.1, jobFail: { count: 2 }, cutDownload: { count: 2 }, uploadReject: { count: 1 }, seed: 'faults' } },
      config: { jobs: { shardSize: 800, pollIntervalSeconds: 0.1, maxAttempts: 5 } },
    }, clock);
    const summaries = await clock.run(runCycles(runtime.context(new AbortController().signal), ['tweets', 'users'], { trigger: 'manual' }), 'both cycles');
    expect(summaries.map((s) => [s.state, s.shards.failed])).toEqual([
      ['closed', 0],
      ['closed', 0],
    ]);
    const stats = world.emulator.stats();
    expect(stats.faults.jobFail).toBe(2);
    expect(stats.faults.cutDownload).toBe(2);
    expect(stats.rateLimited).toBeGreaterThan(0);
    for (const endpoint of ['create', 'get', 'list'] as const) expect(stats.maxPerWindow[endpoint]).toBeLessThanOrEqual(150);
    // Re-runs happen only for the forced failures: 4 tweet shards + 1 user shard + 2 failed jobs + 1 rejected upload.
    expect(stats.jobsCreated.tweets + stats.jobsCreated.users).toBeLessThanOrEqual(5 + 2 + 1);
    expect(normalize(viewStore(runtime.db))).toEqual(expectedView(before.view, before.authors));
  });

  it('re-runs a shard whose upload window expired, and marks a shard failed after jobs.maxAttempts', async () => {
    let offset = 0;
    const { world, runtime } = await setup({
      tweets: 500,
      users: 10,
      emulator: { clock: () => Date.now() + offset },
      config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1, maxAttempts: 2 } },
    });
    // Every job's upload window has passed by the time we upload: both attempts expire, the shard fails.
    runtime.events.on('job:created', () => {
      offset += 16 * 60_000;
    });
    const summary = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(summary.state).toBe('closed');
    expect(summary.shards.failed).toBe(1);
    expect(summary.failures[0]!.error).toMatch(/gave up after 2 jobs/);
    expect(world.emulator.stats().jobsCreated.tweets).toBe(2);
  });

  it('adopts its own job orphaned by a crash between create and record (409), instead of waiting', async () => {
    const { world, runtime } = await setup({ tweets: 800, users: 10, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } });
    // The crashed process got as far as exporting the shard…
    const first = new AbortController();
    runtime.events.on('shard:state', (event) => event.state === 'exported' && first.abort());
    expect((await runCycle(runtime.context(first.signal), 'tweets', { trigger: 'manual' })).state).toBe('interrupted');
    runtime.events.removeAllListeners('shard:state');
    // …recorded the name of the job it was about to create, and X created it, but the process died before recording it.
    const cycle = runtime.ledger.openCycle('tweets')!;
    const shard = runtime.ledger.shards(cycle.id)[0]!;
    const name = newJobName({ storeId: runtime.ledger.storeId(), type: 'tweets', cycleId: cycle.id, seq: shard.seq, attempt: 1 });
    runtime.ledger.setPendingJobName(shard.id, name, new Date());
    const orphan = await new ComplianceClient({ baseUrl: world.emulator.url, token: TOKEN }).createJob({ type: 'tweets', name });
    const adopted: boolean[] = [];
    runtime.events.on('job:created', (event) => adopted.push(event.adopted));
    const summary = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(summary.state).toBe('closed');
    expect(world.emulator.stats().jobsCreated.tweets).toBe(1);
    expect(adopted).toEqual([true]);
    expect(runtime.ledger.jobsOfCycle(summary.cycleId).map((job) => job.id)).toEqual([orphan.id]);
  });

  it('waits for a foreign job of the same type to finish, then runs its own', async () => {
    // On a fake clock the emulator shares, the foreign job is surely still processing when the cycle starts (time
    // stands still until the cycle waits), and the waits for it and for our own job take no real time.
    const clock = new FakeClock();
    const { world, runtime } = await setup({ tweets: 300, users: 10, emulator: { processingMs: 600 }, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } }, clock);
    const client = new ComplianceClient({ baseUrl: world.emulator.url, token: TOKEN });
    const foreign = await client.createJob({ type: 'tweets', name: 'someone-elses-job' });
    const { writeFileSync } = await import('node:fs');
    const file = `${world.dir}/foreign.txt`;
    writeFileSync(file, '1\n2\n');
    await client.upload(foreign, file);
    expect((await client.getJob(foreign.id)).status).toBe('in_progress');
    const summary = await clock.run(runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' }), 'the cycle');
    expect(summary.state).toBe('closed');
    expect(world.emulator.stats().jobsCreated.tweets).toBe(2);
    expect((await client.getJob(foreign.id)).status).toBe('complete');
  });

  it('clears a mark in the next cycle when the ID is no longer reported, but keeps marks still reported', async () => {
    const probe = await setup({ tweets: 400, users: 40 });
    const ids = [...probe.before.view.tweets.keys()].filter((id) => !outcomeFor('tweets', id, SEED));
    const [flips, stays] = [ids[0]!, ids[1]!];
    const authorsCascade = [...probe.before.view.users.keys()].filter((id) => !outcomeFor('users', id, SEED));
    const userFlips = authorsCascade[0]!;
    const rules: OutcomeRules = new Map([
      [flips, { action: 'delete', reason: 'protected' }],
      [stays, { action: 'delete', reason: 'suspended' }],
    ]);
    const userRules: OutcomeRules = new Map([[userFlips, { action: 'delete', reason: 'protected' }]]);
    // Two emulators: the first reports the marks, the second (same seed, later) no longer reports `flips`.
    const dir = tempDir();
    const first = await makeWorld(dir, { tweets: 400, users: 40, emulator: { rules: mergeRules(rules, userRules) } });
    const runtime = openRuntime(first.config, quietLogger(), first.env);
    open.push({ world: first, runtime });
    await runCycles(runtime.context(new AbortController().signal), ['tweets', 'users'], { trigger: 'manual' });
    const state = (id: string) => runtime.db.prepare('SELECT compliance_state, compliance_reason FROM tweets WHERE id = ?').get(id);
    expect(state(flips)).toEqual({ compliance_state: 'protected', compliance_reason: 'protected' });
    const cascaded = runtime.db.prepare('SELECT count(*) FROM tweets WHERE author_id = ? AND compliance_reason = ?').pluck();
    const authored = Number(runtime.db.prepare('SELECT count(*) FROM tweets WHERE author_id = ?').pluck().get(userFlips));
    expect(Number(cascaded.get(userFlips, 'author_protected'))).toBe(authored);

    // Only its emulator is used (the runtime below works on the first world's store): its own store stays small.
    const second = await makeWorld(tempDir(), { tweets: 10, users: 1, emulator: { rules: new Map([[stays, { action: 'delete', reason: 'suspended' }]]) } });
    open.push({ world: second });
    const config = parseConfig({ store: { path: first.storePath }, api: { baseUrl: second.emulator.url }, jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } }, first.configPath, first.env);
    const again = openRuntime(config, quietLogger(), first.env);
    open.push({ world: { ...second, close: async () => undefined }, runtime: again });
    const summaries = await runCycles(again.context(new AbortController().signal), ['tweets', 'users'], { trigger: 'manual' });
    expect(summaries.every((s) => s.state === 'closed')).toBe(true);
    expect(state(flips)).toEqual({ compliance_state: null, compliance_reason: null });
    expect(state(stays)).toEqual({ compliance_state: 'suspended', compliance_reason: 'suspended' });
    expect(Number(cascaded.get(userFlips, 'author_protected'))).toBe(0);
    expect(runtime.db.prepare('SELECT compliance_state FROM users WHERE id = ?').pluck().get(userFlips)).toBeNull();
  });

  it('holds a shard whose deletions are implausible, then applies it when confirmed', async () => {
    const probe = await setup({ tweets: 200, users: 5 });
    const ids = [...probe.before.view.tweets.keys()];
    const rules: OutcomeRules = new Map(ids.slice(0, 150).map((id) => [id, { action: 'delete', reason: 'deleted' }]));
    const { runtime } = await setup({ tweets: 200, users: 5, emulator: { rules }, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } });
    // A dry run reports what the gate would hold and waits on nothing.
    const dry = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual', dryRun: true });
    expect(dry).toMatchObject({ state: 'closed', dryRun: true });
    expect(dry.actions.delete).toBeGreaterThanOrEqual(150);
    expect(Number(runtime.db.prepare('SELECT count(*) FROM tweets').pluck().get())).toBe(200);
    const held = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(held.state).toBe('held');
    expect(held.shards.held).toBe(1);
    expect(Number(runtime.db.prepare('SELECT count(*) FROM tweets').pluck().get())).toBe(200);
    const confirmed = await runCycle(runtime.context(new AbortController().signal, { confirmDeletions: true }), 'tweets', { trigger: 'manual' });
    expect(confirmed.state).toBe('closed');
    expect(confirmed.cycleId).toBe(held.cycleId);
    expect(Number(runtime.db.prepare('SELECT count(*) FROM tweets').pluck().get())).toBeLessThanOrEqual(50);
  });

  it('recognises an apply run that finished just before a crash, and does not apply the results twice', async () => {
    const { runtime } = await setup({ tweets: 900, users: 10, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } });
    const controller = new AbortController();
    // Stop the engine the moment shard 1's results are on disk…
    runtime.events.on('shard:state', (event) => {
      if (event.state === 'downloaded') controller.abort();
    });
    const stopped = await runCycle(runtime.context(controller.signal), 'tweets', { trigger: 'manual' });
    expect(stopped.state).toBe('interrupted');
    const [shard] = runtime.ledger.shards(stopped.cycleId);
    // …then apply them as the crashed process did, up to the run's end but not the shard's transition.
    const { applyResultsFile } = await import('../../src/pipeline/apply/applyFile.js');
    const { resultFile } = await import('../../src/pipeline/context.js');
    const first = await applyResultsFile({
      db: runtime.db,
      config: runtime.context(controller.signal).config,
      type: 'tweets',
      file: resultFile(runtime.context(controller.signal).config, stopped.cycleId, 1),
      logger: quietLogger(),
      shard: { id: shard!.id, idRange: { first: shard!.firstId as Id, last: shard!.lastId as Id }, submittedIds: shard!.idCount },
    });
    expect(first.state).toBe('done');
    expect(runtime.ledger.shard(shard!.id).state).toBe('downloaded');
    const resumed = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(resumed).toMatchObject({ state: 'closed', cycleId: stopped.cycleId });
    expect(runtime.ledger.shard(shard!.id).applyRunId).toBe(first.runId);
    expect(Number(runtime.db.prepare('SELECT count(*) FROM cs_apply_runs WHERE shard_id = ?').pluck().get(shard!.id))).toBe(1);
    // The audit counts each result once.
    expect(resumed.actions.delete).toBe(first.applied.delete);
  });

  it('gives a refused upload up for good: cancels the job (byte-path) and stops after jobs.maxAttempts', async () => {
    const { world, runtime } = await setup({
      tweets: 300,
      users: 10,
      emulator: { transfer: 'bytepath', faults: { uploadReject: { rate: 1, status: 403 } } },
      config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1, maxAttempts: 2 } },
    });
    const summary = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(summary).toMatchObject({ state: 'closed', shards: { failed: 1 } });
    expect(world.emulator.stats().jobsCreated.tweets).toBe(2);
    expect(world.emulator.stats().requests.cancel).toBe(2);
  });

  it('refuses to plan cycles over a TEXT id column, naming the config key', async () => {
    const dir = tempDir();
    const db = new Database(`${dir}/store.db`);
    db.exec("CREATE TABLE people (uid TEXT PRIMARY KEY, compliance_state TEXT, compliance_reason TEXT, compliance_at TEXT); INSERT INTO people VALUES ('42', NULL, NULL, NULL), ('100', NULL, NULL, NULL)");
    db.close();
    const config = parseConfig({ store: { path: 'store.db', tables: { users: { table: 'people', id: 'uid' } } } }, `${dir}/config.json`, {});
    const { StoredIds } = await import('../../src/store/storedIds.js');
    const again = openStore(`${dir}/store.db`);
    expect(() => new StoredIds(again, config, 'users')).toThrow(/store\.tables\.users\.id: cycles need an INTEGER id column/);
    again.close();
  });

  it('a dry run changes nothing in the content tables', async () => {
    const { runtime, before } = await setup({ tweets: 600, users: 60 });
    const summaries = await runCycles(runtime.context(new AbortController().signal), ['tweets', 'users'], { trigger: 'manual', dryRun: true });
    expect(summaries.every((s) => s.dryRun && s.state === 'closed')).toBe(true);
    expect(summaries[0]!.actions.delete).toBeGreaterThan(0);
    expect(viewStore(runtime.db)).toEqual(before.view);
  });

  it("a dry run's summary counts the rows a users cycle would change through the cascade, as the real run then does", async () => {
    const { runtime } = await setup({ tweets: 1500, users: 150 });
    const dry = await runCycle(runtime.context(new AbortController().signal), 'users', { trigger: 'manual', dryRun: true });
    const real = await runCycle(runtime.context(new AbortController().signal), 'users', { trigger: 'manual' });
    expect(real.actions.cascade_delete).toBeGreaterThan(0);
    expect(dry.actions).toEqual(real.actions);
  });
});

function mergeRules(...all: OutcomeRules[]): OutcomeRules {
  return new Map(all.flatMap((rules) => [...rules]));
}
