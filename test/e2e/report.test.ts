import { afterEach, describe, expect, it } from 'vitest';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, spawnCli, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const worlds: World[] = [];
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close();
});

async function cli(w: World, args: string[]) {
  const run = spawnCli([...args, '--config', w.configPath], w.env);
  const { code } = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe('compliance-sync report', () => {
  it('reports what was checked, what failed and became of it, and the coverage of the store', async () => {
    // Shards of 500 tweets; the first job of the run fails for good (maxAttempts 1), the rest succeed. Jobs complete
    // on the first read after their upload (processingMs 0): nothing here is about processing time.
    const w = await makeWorld(tempDir(), {
      tweets: 1500,
      users: 100,
      emulator: { processingMs: 0, faults: { jobFail: { count: 1 } } },
      config: { jobs: { shardSize: 500, pollIntervalSeconds: 0.1, maxAttempts: 1 } },
    });
    worlds.push(w);
    expect((await cli(w, ['reconcile', '--now', '--type', 'tweets'])).code).toBe(1);
    const first = JSON.parse((await cli(w, ['report', '--format', 'json'])).stdout);
    const tweets = first.types.find((t: { type: string }) => t.type === 'tweets');
    expect(tweets.jobsRun).toBe(3);
    expect(tweets.failures).toHaveLength(1);
    expect(tweets.failures[0].resolution).toMatch(/not checked again yet/);
    // The failed shard is the first: its rows are the oldest unchecked ones.
    expect(tweets.coverage.share).toBeLessThan(1);
    expect(tweets.coverage.oldestUnchecked.id).toBe(tweets.failures[0].firstId);
    expect(tweets.coverage.oldestUnchecked.createdAt).toMatch(/^20\d\d-/);
    expect(Object.values(tweets.actionsByReason).length).toBeGreaterThan(0);

    // The next cycle checks everything again: the failure is resolved and the whole store covered.
    expect((await cli(w, ['reconcile', '--now', '--type', 'tweets'])).code).toBe(0);
    // The JSON and the Markdown report of the same state, side by side (report only reads the store).
    const [json, md] = await Promise.all([cli(w, ['report', '--format', 'json']), cli(w, ['report'])]);
    const second = JSON.parse(json.stdout);
    const again = second.types.find((t: { type: string }) => t.type === 'tweets');
    expect(again.failures[0].resolution).toMatch(/checked again by cycle #\d+/);
    expect(again.coverage).toMatchObject({ share: 1, oldestUnchecked: null });
    expect(again.cyclesClosed).toBe(2);

    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/^# Compliance report/m);
    expect(md.stdout).toMatch(/\| checked in the period \| \d+ \(100\.0%\) \|/);
    expect(md.stdout).toContain('### tweets: failures');
  });
});
