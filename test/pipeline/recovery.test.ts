import { describe, expect, it } from 'vitest';
import { runCycle, runCycles } from '../../src/pipeline/cycle.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, useOpenWorlds } from '../helpers/world.js';

const tempDir = useTempDir();
const open = useOpenWorlds();

const DAY = 86_400_000;

async function setup(emulatorClock?: () => number) {
  const world = await makeWorld(tempDir(), {
    tweets: 1200,
    users: 100,
    config: { jobs: { shardSize: 500, pollIntervalSeconds: 0.1 } },
    ...(emulatorClock ? { emulator: { clock: emulatorClock } } : {}),
  });
  const runtime = openRuntime(world.config, quietLogger(), world.env);
  open.push({ world, runtime });
  return { world, runtime };
}

describe('rerunning reconcile --now after a crash costs no extra jobs', () => {
  it('a cycle closed by the stopped run is reported, not run again; the unfinished one resumes; the next run is new', async () => {
    const { world, runtime } = await setup();
    // The stopped run: tweets closed (the process died before printing), users stopped in its first shard.
    const tweets = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual', recover: true });
    expect(tweets.state).toBe('closed');
    const stop = new AbortController();
    runtime.events.on('shard:state', (event) => event.type === 'users' && event.state === 'uploaded' && stop.abort());
    expect((await runCycle(runtime.context(stop.signal), 'users', { trigger: 'manual', recover: true })).state).toBe('interrupted');
    runtime.events.removeAllListeners('shard:state');
    const jobsBefore = world.emulator.stats().jobsCreated;

    // The rerun: the same summary for tweets without a job, users finished with the job it had.
    const rerun = await runCycles(runtime.context(new AbortController().signal), ['tweets', 'users'], { trigger: 'manual', recover: true });
    expect(rerun.map((summary) => [summary.type, summary.state])).toEqual([
      ['tweets', 'closed'],
      ['users', 'closed'],
    ]);
    expect(rerun[0]).toEqual(tweets);
    expect(world.emulator.stats().jobsCreated).toEqual(jobsBefore);

    // Once reported (as the CLI does after printing), asking again is asking for a new cycle.
    runtime.ledger.markCyclesReported(rerun.map((summary) => summary.cycleId), new Date());
    const next = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual', recover: true });
    expect(next.cycleId).toBeGreaterThan(tweets.cycleId);
    expect(world.emulator.stats().jobsCreated.tweets).toBe(jobsBefore.tweets + 3);
  });

  it('a closed, unreported cycle is not reused once a scheduled run fell due since it started', async () => {
    // The API's clock is a day ahead throughout, so that both runs agree with it about job windows.
    const { world, runtime } = await setup(() => Date.now() + DAY);
    const first = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual', recover: true });
    // The schedule is daily at 03:00 UTC: a day later, a run is due whatever the time now.
    const tomorrow = { ...runtime.context(new AbortController().signal), now: () => new Date(Date.now() + DAY) };
    const again = await runCycle(tomorrow, 'tweets', { trigger: 'manual', recover: true });
    expect(again.cycleId).toBeGreaterThan(first.cycleId);
    expect(world.emulator.stats().jobsCreated.tweets).toBe(6);
  });
});
