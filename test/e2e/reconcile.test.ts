import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { openStore } from '../../src/store/open.js';
// `it` with a per-test `scope` (temp dirs, worlds, receivers): some tests here run side by side.
import { itScoped as it } from '../helpers/scope.js';
import { spawnCli, TOKEN, waitForOutput, type World } from '../helpers/world.js';

/** Everything compliance changes, row by row (compliance_at aside: it is the time of the run that set it). */
function dump(storePath: string): string {
  const db = openStore(storePath, { readonly: true });
  const tweets = db
    .prepare('SELECT id, author_id, geo_lat, geo_lon, place_id, raw_json, compliance_state, compliance_reason FROM tweets ORDER BY id')
    .raw()
    .all();
  const users = db.prepare('SELECT id, raw_json, compliance_state, compliance_reason FROM users ORDER BY id').raw().all();
  db.close();
  return JSON.stringify({ tweets, users }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

async function reconcile(w: World, args: string[] = []) {
  const run = spawnCli(['reconcile', '--now', '--config', w.configPath, ...args], w.env);
  const { code } = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe('compliance-sync reconcile --now (spawned)', () => {
  // The short runs are independent (a world each) and mostly process start-up and polls: they run side by side. The
  // SIGKILL sweep runs alone, after them: when its kills land depends on how fast its runs get along.
  it.concurrent('runs both cycles, prints the summary and exits 0', async ({ scope }) => {
    const w = await scope.world({ tweets: 1500, users: 150, config: { log: { level: 'trace' } } });
    const result = await reconcile(w);
    expect(result.code).toBe(0);
    // Every request is logged at this level, with its URL: never the token or a signature.
    const output = result.stdout + result.stderr;
    expect(output).toContain('storage request');
    expect(output).not.toContain(TOKEN);
    expect(output).not.toMatch(/X-Goog-Signature=(?!REDACTED)/);
    expect(result.stdout).toMatch(/state\s+closed\s+closed/);
    expect(result.stdout).toMatch(/IDs checked\s+\d+\s+150/);
    // Logs went to stderr, one line per state change, as JSON.
    expect(result.stderr).toContain('"msg":"cycle closed"');
  });

  it.concurrent('exits 1 when a shard fails after every attempt, and says so', async ({ scope }) => {
    const w = await scope.world({ tweets: 300, users: 10, emulator: { faults: { jobFail: { rate: 1 } } }, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1, maxAttempts: 2 } } });
    const result = await reconcile(w, ['--type', 'tweets']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/shards failed\s+1/);
    expect(result.stderr).toMatch(/failed after every attempt/);
    expect(w.emulator.stats().jobsCreated.tweets).toBe(2);
  });

  it.concurrent('refuses without --now (64) and with a bad token (78)', async ({ scope }) => {
    const w = await scope.world({ tweets: 10, users: 1 });
    expect((await spawnCli(['reconcile', '--config', w.configPath], w.env).exit).code).toBe(64);
    const bad = await reconcile({ ...w, env: { ...w.env, X_BEARER_TOKEN: 'wrong-token' } });
    expect(bad.code).toBe(78);
    expect(bad.stderr).toMatch(/Try: check the bearer token/);
  });

  it.concurrent('export writes the shard files alone', async ({ scope }) => {
    const w = await scope.world({ tweets: 2500, users: 10 });
    const out = scope.tempDir();
    const run = spawnCli(['export', '--type', 'tweets', '--out', out, '--shard-size', '1000', '--config', w.configPath], w.env);
    expect((await run.exit).code).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['tweets-00001.txt', 'tweets-00002.txt', 'tweets-00003.txt']);
    const ids = files.flatMap((file) => readFileSync(`${out}/${file}`, 'utf8').trim().split('\n'));
    expect(ids).toHaveLength(2500);
    expect(ids.every((id) => /^[0-9]{1,19}$/.test(id))).toBe(true);
    expect([...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1))).toEqual(ids);
  });

  it('resumes after SIGKILL at many points and ends with the same store and no extra jobs', async ({ scope }) => {
    const options = {
      tweets: 2400,
      users: 240,
      emulator: { processingMs: 150 },
      config: { jobs: { shardSize: 600, pollIntervalSeconds: 0.1 }, reconcile: { batchSize: 20 }, log: { level: 'debug' } },
    };
    // The uninterrupted runs, on a world of their own, go on while the sweep below runs; the kill points are counted
    // in log lines, not time.
    const reference = await scope.world(options);
    const referenceRuns = (async () => {
      for (const type of ['tweets', 'users']) expect((await reconcile(reference, ['--type', type])).code).toBe(0);
    })();
    // Awaited after the sweep; a failure then is reported there, not as an unhandled rejection meanwhile.
    referenceRuns.catch(() => undefined);

    const crashed = await scope.world(options);
    let kills = 0;
    for (const type of ['tweets', 'users']) {
      // Kill after the k-th log line, for a growing k: every run gets further, and the kill points sweep the
      // pipeline (export, create, upload, polling, download, between reconcile batches).
      for (let k = 1; ; k += 3) {
        const run = spawnCli(['reconcile', '--now', '--type', type, '--config', crashed.configPath], crashed.env);
        const lines = (text: string) => text.split('\n').filter((line) => line.startsWith('{')).length;
        const killed = waitForOutput(run, (text) => lines(text) >= k).then(
          () => run.child.kill('SIGKILL'),
          () => false,
        );
        const [{ code, signal }] = await Promise.all([run.exit, killed]);
        // A run killed after it printed its summary had done its work (a person would not run it again); rerunning it
        // would rightly start a new cycle. Killed before printing, the rerun reports or resumes what it left.
        if (signal === 'SIGKILL' && run.stdout().trim() === '') {
          kills++;
          continue;
        }
        if (signal === 'SIGKILL') break;
        expect(code).toBe(0);
        break;
      }
    }
    await referenceRuns;
    const referenceJobs = reference.emulator.stats().jobsCreated;
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(dump(crashed.storePath)).toBe(dump(reference.storePath));
    // Jobs orphaned by a kill were adopted, uploads repeated to the same job: one job per shard, as uninterrupted.
    expect(crashed.emulator.stats().jobsCreated).toEqual(referenceJobs);
    // Some 14 spawned runs, one after another: on a loaded two-core machine this takes minutes, not the suite's default minute.
  }, 300_000);
});
