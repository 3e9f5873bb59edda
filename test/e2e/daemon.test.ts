import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { acquireRunLock, currentLockHolder } from '../../src/store/runLock.js';
// `it` with a per-test `scope` (temp dirs, worlds, daemons): the tests here run side by side.
import { itScoped as it, type Scope } from '../helpers/scope.js';
import { spawnCli, waitForOutput, type Spawned, type World } from '../helpers/world.js';

function startDaemon(scope: Scope, w: World): Spawned {
  return scope.process(spawnCli(['run', '--config', w.configPath], w.env));
}

/** `status --json` through a config of its own, so that a broken edit of the daemon's config does not hide it. */
async function status(w: World) {
  const statusConfig = `${w.dir}/status-config.json`;
  writeFileSync(statusConfig, JSON.stringify({ store: { path: w.storePath } }));
  const run = spawnCli(['status', '--json', '--config', statusConfig], w.env);
  const { code } = await run.exit;
  expect(code).toBe(0);
  return JSON.parse(run.stdout());
}

function editConfig(w: World, edit: (config: Record<string, any>) => void): void {
  const config = JSON.parse(readFileSync(w.configPath, 'utf8'));
  edit(config);
  writeFileSync(w.configPath, JSON.stringify(config, null, 2));
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

// Each test has its own store, emulator and daemons, and spends most of its time waiting on them: they run side by
// side.
describe.concurrent('compliance-sync run (the daemon, spawned)', () => {
  it('moves the schedule on SIGHUP, and keeps it when the edit is invalid', async ({ scope }) => {
    const w = await scope.world({ tweets: 10, users: 1, config: { schedule: { cron: '0 3 * * *' } } });
    const daemon = startDaemon(scope, w);
    await waitForOutput(daemon, (text) => text.includes('"msg":"daemon started"'), 'stdout');
    expect(new Date((await status(w)).schedule.tweets.nextRunAt).getUTCHours()).toBe(3);

    editConfig(w, (config) => (config.schedule.cron = '0 5 * * *'));
    daemon.child.kill('SIGHUP');
    await waitForOutput(daemon, (text) => /"changed":\["schedule.cron"\]/.test(text), 'stdout');
    const moved = await status(w);
    expect(new Date(moved.schedule.tweets.nextRunAt).getUTCHours()).toBe(5);

    editConfig(w, (config) => (config.schedule.cron = '61 * * * *'));
    daemon.child.kill('SIGHUP');
    await waitForOutput(daemon, (text) => text.includes('config reload refused'), 'stdout');
    expect(daemon.stdout()).toMatch(/schedule\.cron: is not a valid cron expression/);
    expect((await status(w)).schedule.tweets.nextRunAt).toBe(moved.schedule.tweets.nextRunAt);
    expect(daemon.child.exitCode).toBeNull();

    // Saving the file is enough: the daemon watches it.
    editConfig(w, (config) => (config.schedule.cron = '0 7 * * *'));
    await waitForOutput(daemon, (text) => /"reason":"config file changed","changed":\["schedule.cron"\]/.test(text), 'stdout');
    expect(new Date((await status(w)).schedule.tweets.nextRunAt).getUTCHours()).toBe(7);

    daemon.child.kill('SIGTERM');
    expect((await daemon.exit).code).toBe(0);
  });

  it('SIGTERM mid-cycle exits 0, and the next start resumes the cycle', async ({ scope }) => {
    // The emulator's clock stands still while the first daemon runs: its first job cannot complete, so the SIGTERM
    // surely lands mid-cycle however slow the machine. Once it runs again, jobs complete after processingMs.
    let frozenAt: number | null = null;
    const w = await scope.world({
      tweets: 1200,
      users: 20,
      emulator: { processingMs: 300, clock: () => frozenAt ?? Date.now() },
      config: { schedule: { cron: '0 3 * * *', types: ['tweets'] }, jobs: { shardSize: 400, pollIntervalSeconds: 0.1 } },
    });
    const first = startDaemon(scope, w);
    await waitForOutput(first, (text) => text.includes('"msg":"daemon started"'), 'stdout');
    frozenAt = Date.now();
    first.child.kill('SIGUSR1');
    await waitForOutput(first, (text) => text.includes('"state":"uploaded"'), 'stdout');
    first.child.kill('SIGTERM');
    expect(await first.exit).toEqual({ code: 0, signal: null });
    frozenAt = null;
    const between = await status(w);
    expect(between.inProgress).toHaveLength(1);
    expect(between.inProgress[0].shardsDone).toBeLessThan(3);

    const second = startDaemon(scope, w);
    await waitForOutput(second, (text) => text.includes('resuming the unfinished cycle') && text.includes('"msg":"cycle closed"'), 'stdout');
    const after = await status(w);
    expect(after.inProgress).toHaveLength(0);
    expect(after.lastCycles[0].id).toBe(between.inProgress[0].cycleId);
    expect(after.lastCycles[0].summary.shards).toMatchObject({ total: 3, applied: 3 });
    expect(w.emulator.stats().jobsCreated.tweets).toBe(3);
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('holds the run lock only while a cycle runs: reconcile --now works between cycles; one daemon per store', async ({ scope }) => {
    const w = await scope.world({ tweets: 300, users: 20, config: { schedule: { cron: '0 3 * * *' } } });
    const daemon = startDaemon(scope, w);
    await waitForOutput(daemon, (text) => text.includes('"msg":"daemon started"'), 'stdout');
    const second = startDaemon(scope, w);
    expect((await second.exit).code).toBe(75);
    expect(second.stderr()).toMatch(new RegExp(`a daemon already runs on the store .*pid ${daemon.child.pid}`));
    const between = spawnCli(['reconcile', '--now', '--config', w.configPath], w.env);
    expect((await between.exit).code).toBe(0);
    expect(await status(w)).toMatchObject({ daemon: { running: true }, runLock: null });
    daemon.child.kill('SIGTERM');
    expect((await daemon.exit).code).toBe(0);
  });

  it('during a daemon cycle, reconcile --now exits 75 naming the daemon, and --wait gives up after its limit', async ({ scope }) => {
    // Jobs that take far longer than the test: the cycle is surely running while the two runs try.
    const w = await scope.world({ tweets: 300, users: 20, emulator: { processingMs: 600_000 }, config: { schedule: { cron: '0 3 * * *', types: ['tweets'] } } });
    const daemon = startDaemon(scope, w);
    await waitForOutput(daemon, (text) => text.includes('"msg":"daemon started"'), 'stdout');
    daemon.child.kill('SIGUSR1');
    await waitForOutput(daemon, (text) => text.includes('"state":"uploaded"'), 'stdout');
    expect((await status(w)).runLock).toMatchObject({ pid: daemon.child.pid, command: 'run' });
    const refused = spawnCli(['reconcile', '--now', '--config', w.configPath], w.env);
    expect((await refused.exit).code).toBe(75);
    expect(refused.stderr()).toMatch(/in use by run \(pid \d+/);
    expect(refused.stderr()).toMatch(/Try: the daemon is running a cycle .*--wait SECONDS/);
    const waited = spawnCli(['reconcile', '--now', '--wait', '1', '--config', w.configPath], w.env);
    expect((await waited.exit).code).toBe(75);
    expect(waited.stderr()).toContain(`held by run (pid ${daemon.child.pid} on `);
    expect(waited.stderr()).toMatch(/gave up after waiting \d+ s for the run lock/);
    daemon.child.kill('SIGTERM');
    expect((await daemon.exit).code).toBe(0);
  });

  // The wait's backoff, its retries and the cycle that follows are tested in-process on a fake clock (test/scheduler/daemon.test.ts).
  it('a cycle due while another process holds the run lock waits, status says so, and SIGTERM ends the wait with exit 0', async ({ scope }) => {
    const w = await scope.world({ tweets: 300, users: 20, config: { schedule: { cron: '0 3 * * *', types: ['tweets'] } } });
    const daemon = startDaemon(scope, w);
    await waitForOutput(daemon, (text) => text.includes('"msg":"daemon started"'), 'stdout');
    // This test process plays the one-off run that holds the lock.
    const manual = acquireRunLock(w.storePath, 'reconcile --now');
    try {
      daemon.child.kill('SIGUSR1');
      await waitForOutput(daemon, (text) => text.includes('another process holds the store run lock; retrying'), 'stdout');
      const s = await status(w);
      expect(s.daemon.state).toMatch(new RegExp(`^waiting for the store run lock held by reconcile --now \\(pid ${process.pid} on .*next try `));
      expect(daemon.stdout()).not.toContain('"msg":"cycle started"');
      daemon.child.kill('SIGTERM');
      expect((await daemon.exit).code).toBe(0);
      expect(daemon.stdout()).not.toContain('"msg":"cycle started"');
      expect(currentLockHolder(w.storePath)?.pid).toBe(process.pid);
    } finally {
      manual.release();
    }
  });

  it('a bad config at start exits 78 and names the field', async ({ scope }) => {
    const w = await scope.world({ tweets: 10, users: 1, config: { jobs: { shardSize: 0 } } }).catch(() => null);
    expect(w).toBeNull();
    const dir = scope.tempDir();
    writeFileSync(`${dir}/config.json`, JSON.stringify({ store: { path: 'x.db' }, schedule: { timezone: 'Nowhere/Land' } }));
    const run = spawnCli(['run', '--config', `${dir}/config.json`], {});
    expect((await run.exit).code).toBe(78);
    expect(run.stderr()).toContain('schedule.timezone');
  });

  // Alone, after the others: its last check gives the file watch a fixed time to act, which a loaded machine would
  // stretch.
  it.sequential('`reload` waits for the daemon and says how it went; one edit is loaded once', async ({ scope }) => {
    const w = await scope.world({ tweets: 10, users: 1, config: { schedule: { cron: '0 3 * * *' } } });
    const daemon = startDaemon(scope, w);
    await waitForOutput(daemon, (text) => text.includes('"msg":"daemon started"'), 'stdout');
    editConfig(w, (config) => (config.schedule.cron = '0 5 * * *'));
    const reload = spawnCli(['reload', '--config', w.configPath], w.env);
    expect((await reload.exit).code).toBe(0);
    // Whichever came first, SIGHUP or the file watch, applied it; the other found it in force.
    expect(reload.stdout()).toMatch(/^reloaded: (changed: schedule\.cron|the config file as it is now was already in force)$/m);
    expect(new Date((await status(w)).schedule.tweets.nextRunAt).getUTCHours()).toBe(5);
    // The file watch saw the same edit; give it time to act, then the edit must have been applied once.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(count(daemon.stdout(), '"msg":"config reloaded"')).toBe(1);

    editConfig(w, (config) => (config.schedule.cron = '61 * * * *'));
    const refused = spawnCli(['reload', '--pid', String(daemon.child.pid), '--config', w.configPath], w.env);
    expect((await refused.exit).code).toBe(78);
    expect(refused.stderr()).toMatch(/schedule\.cron/);
    await waitForOutput(daemon, (text) => text.includes('config reload refused'), 'stdout');
    expect(new Date((await status(w)).schedule.tweets.nextRunAt).getUTCHours()).toBe(5);
    daemon.child.kill('SIGTERM');
    expect((await daemon.exit).code).toBe(0);
  });
});
