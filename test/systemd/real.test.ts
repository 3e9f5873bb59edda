import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedStore } from '../../src/store/demoData.js';
import { createStore } from '../../src/store/migrate.js';
import { REPO_ROOT } from '../helpers/tmp.js';

/**
 * The shipped units under a real systemd: PID 1 of fresh namespaces (test/systemd/harness.sh), the units installed as
 * systemd/README.md says, the built CLI as /usr/bin/compliance-sync and the emulator on the namespace's loopback.
 * Where that cannot run here, the probe says why and the whole file is reported as skipped.
 */
const HARNESS = path.join(REPO_ROOT, 'test/systemd/harness.sh');
const PORT = 18787;
const SLOW_PORT = 18788;
const TOKEN = 'systemd-test-token';
const WATCHDOG_SEC = 6;
const CONFIG = '/etc/compliance-sync/config.json';
const STORE = '/var/lib/compliance-sync/archive.db';
/** `status` reads a config of its own, so that an invalid edit of the daemon's does not hide what the daemon does. */
const STATUS_CONFIG = '/etc/compliance-sync/status.json';
const INSTALL_CONFIG = `install -m 0644 /run/cs-harness/host/config.json ${CONFIG}`;

function probeReason(): string | null {
  if (/^\/(home|root)(\/|$)/.test(REPO_ROOT)) return `the checkout (${REPO_ROOT}) is under /home or /root, which ProtectHome=yes hides from the service`;
  const probe = spawnSync('bash', [HARNESS, 'probe'], { encoding: 'utf8', timeout: 300_000 });
  if (probe.status === 0) return null;
  return (probe.stdout.trim() || probe.stderr.trim() || `the probe ended with ${probe.status ?? probe.signal}`).split('\n')[0]!;
}

const skipReason = probeReason();
if (skipReason) console.warn(`test/systemd/real.test.ts: skipped: ${skipReason}`);

interface Run {
  code: number | null;
  out: string;
}

describe.skipIf(skipReason !== null)('the units under a real systemd (PID 1 of fresh namespaces)', { timeout: 120_000 }, () => {
  let scratch = '';
  let pid = '';
  let mainPid = '';
  let startedAt = 0;

  /** A shell command inside the namespaces, as root. */
  function sh(command: string): Run {
    const result = spawnSync('bash', [HARNESS, 'exec', pid, 'sh', '-c', command], { encoding: 'utf8', timeout: 120_000 });
    return { code: result.status, out: `${result.stdout}${result.stderr}` };
  }

  function show(unit: string): Record<string, string> {
    const { out } = sh(`systemctl show ${unit} -p ActiveState,SubState,StatusText,MainPID,NRestarts,Result,ExecMainStatus,WatchdogUSec`);
    return Object.fromEntries(out.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  }

  const journal = (unit: string) => sh(`journalctl -u ${unit} -o cat --no-pager`).out;
  const count = (text: string, needle: string) => text.split(needle).length - 1;
  const cyclesBegun = (text: string) => count(text, '"msg":"cycle started"') + count(text, '"msg":"cycle resumed"');

  /** Polls until `check` holds; the limit only turns a hang into a failure with a message. */
  async function until(check: () => boolean, what: string, limitMs = 45_000): Promise<void> {
    const end = Date.now() + limitMs;
    while (!check()) {
      if (Date.now() > end) throw new Error(`gave up waiting until ${what}; daemon:\n${journal('compliance-sync').slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Replaces the installed config (an administrator's edit). */
  function setConfig(schedule: Record<string, unknown> = {}, port = PORT): void {
    writeConfig(schedule, port);
    if (pid) expect(sh(INSTALL_CONFIG).code).toBe(0);
  }

  /** The config as the host prepares it; INSTALL_CONFIG installs it (inside the namespaces). */
  function writeConfig(schedule: Record<string, unknown> = {}, port = PORT): void {
    const config = {
      store: { path: STORE },
      api: { baseUrl: `http://127.0.0.1:${port}`, timeoutSeconds: 10 },
      jobs: { shardSize: 300, pollIntervalSeconds: 0.2 },
      schedule: { cron: '0 3 * * *', ...schedule },
      log: { level: 'info' },
    };
    writeFileSync(path.join(scratch, 'config.json'), JSON.stringify(config, null, 2));
  }

  /** What `compliance-sync status` says, run as the service user as systemd/README.md shows. */
  function status(): { runLock: { pid: number } | null; daemon: { running: boolean; state: string | null }; schedule: { tweets: { nextRunAt: string | null } } } {
    const run = sh(`runuser -u compliance-sync -- compliance-sync status --json --config ${STATUS_CONFIG}`);
    expect(run.code, run.out).toBe(0);
    return JSON.parse(run.out);
  }

  /** Starts a daemon cycle and returns once it has a job uploaded (it then waits on the emulator's processing time). */
  async function cycleRunning(): Promise<void> {
    const uploads = count(journal('compliance-sync'), '"state":"uploaded"');
    expect(sh('systemctl kill --kill-whom=main -s USR1 compliance-sync').code).toBe(0);
    await until(() => count(journal('compliance-sync'), '"state":"uploaded"') > uploads, 'the daemon cycle uploaded a shard');
  }

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'cs-systemd-'));
    const db = createStore(path.join(scratch, 'archive.db'));
    seedStore(db, { tweets: 600, users: 60, seed: 7 });
    db.close();
    setConfig();
    writeFileSync(path.join(scratch, 'x-bearer-token'), `${TOKEN}\n`);
    const boot = spawnSync('bash', [HARNESS, 'boot', scratch, REPO_ROOT], { encoding: 'utf8', timeout: 60_000 });
    expect(boot.status, boot.stderr).toBe(0);
    pid = boot.stdout.trim();

    // Jobs complete 300 ms after their upload, so that a cycle polls a job in progress (pollIntervalSeconds 0.2) without
    // waiting seconds for it; no case here looks at a job in progress of this emulator (the slow one is for that).
    const emulator = `systemd-run --unit=cs-emulator -p Type=exec /usr/bin/compliance-sync emulator --port ${PORT} --token ${TOKEN} --processing-ms 300 --rate-limit 100000 --log-level warn`;
    expect(sh(emulator).code).toBe(0);
    // A second emulator, whose jobs take ten minutes, for the case where a daemon cycle must surely hold the lock
    // while it is checked; started now so that its start-up overlaps the cases before that one.
    const slow = `systemd-run --unit=cs-emulator-slow -p Type=exec /usr/bin/compliance-sync emulator --port ${SLOW_PORT} --token ${TOKEN} --processing-ms 600000 --rate-limit 100000 --log-level warn`;
    expect(sh(slow).code).toBe(0);
    await until(() => sh(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${PORT}'`).code === 0, 'the emulator listens');
    writeFileSync(path.join(scratch, 'status.json'), JSON.stringify({ store: { path: STORE } }));
    expect(sh(`install -m 0644 /run/cs-harness/host/status.json ${STATUS_CONFIG}`).code).toBe(0);
    // The only change to the shipped units: a short watchdog, so that surviving it is checked in seconds.
    expect(sh(`mkdir -p /etc/systemd/system/compliance-sync.service.d && printf '[Service]\\nWatchdogSec=${WATCHDOG_SEC}s\\n' > /etc/systemd/system/compliance-sync.service.d/watchdog.conf && systemctl daemon-reload`).code).toBe(0);
  }, 120_000);

  afterAll(() => {
    if (pid) spawnSync('bash', [HARNESS, 'shutdown', pid, scratch]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('starts: READY=1 after the config check, a STATUS= line, and the token from its credential', () => {
    const start = sh('systemctl start compliance-sync');
    expect(start.code, start.out).toBe(0);
    startedAt = Date.now();
    const unit = show('compliance-sync');
    expect(unit).toMatchObject({ ActiveState: 'active', SubState: 'running', NRestarts: '0', WatchdogUSec: `${WATCHDOG_SEC}s` });
    expect(unit.StatusText).toMatch(/^idle; next run \d{4}-\d\d-\d\dT03:00/);
    mainPid = unit.MainPID!;
    expect(Number(mainPid)).toBeGreaterThan(0);
    expect(sh('test -s /run/credentials/compliance-sync.service/x-bearer-token').code).toBe(0);
    expect(status().daemon).toMatchObject({ running: true, state: expect.stringMatching(/^idle/) });
  });

  it('runs a cycle of each type on SIGUSR1 (systemctl kill), through the emulator with the credential token', async () => {
    expect(sh('systemctl kill --kill-whom=main -s USR1 compliance-sync').code).toBe(0);
    await until(() => count(journal('compliance-sync'), '"msg":"cycle closed"') >= 2, 'both cycles closed');
    const log = journal('compliance-sync');
    expect(log).toMatch(/"type":"tweets".*"idsChecked":\d+.*"failed":0.*"msg":"cycle closed"/);
    expect(log).toMatch(/"type":"users".*"idsChecked":60,.*"failed":0.*"msg":"cycle closed"/);
    expect(log).not.toContain(TOKEN);
    await until(() => /^idle/.test(show('compliance-sync').StatusText ?? ''), 'the daemon is idle again');
    expect(status().runLock).toBeNull();
  });

  it('the oneshot unit runs a cycle while the daemon is idle', () => {
    const run = sh('systemctl start compliance-sync-reconcile');
    expect(run.code, journal('compliance-sync-reconcile')).toBe(0);
    expect(show('compliance-sync-reconcile')).toMatchObject({ Result: 'success', ExecMainStatus: '0' });
    expect(journal('compliance-sync-reconcile')).toMatch(/IDs checked\s+\d+\s+\d+/);
    expect(show('compliance-sync').MainPID).toBe(mainPid);
  });

  it('systemctl reload: applied in place, refused when invalid, and never left "reloading"', async () => {
    setConfig({ cron: '0 5 * * *' });
    const reload = sh('systemctl reload compliance-sync');
    expect(reload.code, reload.out).toBe(0);
    // systemctl returned after the daemon had reloaded: the new schedule is in force at once.
    expect(show('compliance-sync')).toMatchObject({ MainPID: mainPid, SubState: 'running', StatusText: expect.stringMatching(/^reloaded .*next run \S+T05:00/) });
    expect(status().schedule.tweets.nextRunAt).toMatch(/T05:00/);

    setConfig({ cron: '61 * * * *' });
    const refused = sh('systemctl reload compliance-sync');
    expect(refused.code).not.toBe(0);
    expect(show('compliance-sync')).toMatchObject({ MainPID: mainPid, ActiveState: 'active', SubState: 'running', StatusText: expect.stringMatching(/^reload refused/) });
    expect(journal('compliance-sync')).toMatch(/schedule\.cron: is not a valid cron expression/);
    expect(show('compliance-sync').StatusText).toMatch(/next run \S+T05:00/);

    // Back-to-back: systemctl reload (ExecReload waits for the daemon), then bare SIGHUPs, whose RELOADING=1 and
    // READY=1 alone bracket the reload (their order is what once left the unit "reloading" for 5 minutes).
    for (let i = 0; i < 3; i++) {
      setConfig({ cron: `${i} 6 * * *` });
      const again = sh('systemctl reload compliance-sync');
      expect(again.code, again.out).toBe(0);
      expect(show('compliance-sync').SubState).toBe('running');
    }
    for (let i = 0; i < 20; i++) {
      writeConfig({ cron: `${i} 4 * * *` });
      expect(sh(`${INSTALL_CONFIG} && systemctl kill --kill-whom=main -s HUP compliance-sync`).code).toBe(0);
    }
    // A `systemctl reload` now is answered only after every SIGHUP before it was: then nothing may be left pending.
    const drain = sh('systemctl reload compliance-sync');
    expect(drain.code, drain.out).toBe(0);
    expect(show('compliance-sync')).toMatchObject({ MainPID: mainPid, ActiveState: 'active', SubState: 'running', StatusText: expect.stringMatching(/next run \S+T04:19/) });
  });

  it(`keeps its watchdog fed past WatchdogSec=${WATCHDOG_SEC}s`, async () => {
    const waitMore = startedAt + 2 * WATCHDOG_SEC * 1000 - Date.now();
    if (waitMore > 0) await new Promise((resolve) => setTimeout(resolve, waitMore));
    expect(show('compliance-sync')).toMatchObject({ MainPID: mainPid, NRestarts: '0', ActiveState: 'active' });
    expect(sh('journalctl -u compliance-sync --no-pager').out).not.toMatch(/[Ww]atchdog timeout/);
  });

  it('during a daemon cycle the oneshot waits without taking the lock; systemctl stop exits 0; then the oneshot runs', async () => {
    // The slow emulator (started in beforeAll): the daemon's cycle surely holds the lock while this is checked.
    await until(() => sh(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${SLOW_PORT}'`).code === 0, 'the slow emulator listens');
    setConfig({}, SLOW_PORT);
    expect(sh('systemctl restart compliance-sync').code).toBe(0);
    const daemonPid = show('compliance-sync').MainPID!;
    await cycleRunning();

    const cyclesBefore = cyclesBegun(journal('compliance-sync-reconcile'));
    expect(sh('systemctl start --no-block compliance-sync-reconcile').code).toBe(0);
    await until(() => journal('compliance-sync-reconcile').includes(`held by run (pid ${daemonPid} on `), 'the oneshot says what it waits for');
    expect(show('compliance-sync-reconcile').ActiveState).toBe('activating');
    expect(status().runLock).toMatchObject({ pid: Number(daemonPid) });
    expect(cyclesBegun(journal('compliance-sync-reconcile'))).toBe(cyclesBefore);

    const began = Date.now();
    const stop = sh('systemctl stop compliance-sync');
    const seconds = (Date.now() - began) / 1000;
    expect(stop.code, stop.out).toBe(0);
    // "timeout" here would mean systemd had to kill it; the time is reported, not asserted.
    expect(show('compliance-sync')).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });
    console.info(`test/systemd/real: systemctl stop mid-cycle took ${seconds.toFixed(1)} s`);

    // The lock is free: the oneshot takes it and resumes the cycle the daemon left (on the same ten-minute jobs).
    await until(() => cyclesBegun(journal('compliance-sync-reconcile')) > cyclesBefore, 'the oneshot started its cycle');
    expect(sh('systemctl stop compliance-sync-reconcile').code).toBe(0);
    setConfig();
  });

  it('a bad config at start: exit 78 and no restart loop', async () => {
    setConfig({ cron: '61 * * * *' });
    expect(sh('systemctl start compliance-sync').code).not.toBe(0);
    await until(() => show('compliance-sync').ActiveState === 'failed', 'the unit failed');
    expect(show('compliance-sync')).toMatchObject({ ExecMainStatus: '78', NRestarts: '0' });
    setConfig();
  });
});
