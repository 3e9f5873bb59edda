import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, useTempDir } from '../helpers/tmp.js';

const SYSTEMD_DIR = path.join(REPO_ROOT, 'systemd');
const DAEMON = 'compliance-sync.service';
const RECONCILE = 'compliance-sync-reconcile.service';
const UNITS = [DAEMON, RECONCILE] as const;
/** Where the shipped units expect `npm install -g` to have put the CLI. */
const INSTALLED_BIN = '/usr/bin/compliance-sync';

const tempDir = useTempDir();

/** No colours, no pager: the output is parsed. */
const ENV = { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: 'cat', SYSTEMD_LOG_COLOR: '0' };

function run(command: string, args: string[], cwd?: string): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env: ENV, encoding: 'utf8', timeout: 60_000 });
}

function available(command: string): boolean {
  return run(command, ['--version']).error === undefined;
}

const hasAnalyze = available('systemd-analyze');
const hasSysusers = available('systemd-sysusers');
if (!hasAnalyze) console.warn('test/systemd: skipped: systemd-analyze is not installed on this machine');

type Unit = Record<string, Record<string, string[]>>;

/** Sections → keys → every value assigned (keys like SystemCallFilter= repeat). Comments and blank lines dropped. */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not a key=value line: ${line}`);
    if (line.endsWith('\\')) throw new Error(`continuation lines are not parsed here: ${line}`);
    const key = line.slice(0, eq).trim();
    (unit[section]![key] ??= []).push(line.slice(eq + 1).trim());
  }
  return unit;
}

function readUnit(name: string): { text: string; unit: Unit } {
  const text = readFileSync(path.join(SYSTEMD_DIR, name), 'utf8');
  return { text, unit: parseUnit(text) };
}

/**
 * Copies both units into a temp dir with the CLI path pointing at a stub executable, because `systemd-analyze verify`
 * fails on an Exec*= binary that does not exist. The copy differs from the shipped unit in that path only.
 */
function resolvableCopies(): string {
  const dir = tempDir();
  const bin = path.join(dir, 'bin', 'compliance-sync');
  mkdirSync(path.dirname(bin));
  writeFileSync(bin, '#!/bin/sh\nexit 0\n');
  chmodSync(bin, 0o755);
  for (const name of UNITS) {
    const { text } = readUnit(name);
    const uses = text.split('\n').filter((line) => line.startsWith(`ExecStart=${INSTALLED_BIN} `));
    expect(uses, `${name}: exactly one ExecStart=${INSTALLED_BIN} …`).toHaveLength(1);
    writeFileSync(path.join(dir, name), text.replace(new RegExp(`^(Exec\\w+)=${INSTALLED_BIN} `, 'gm'), `$1=${bin} `));
  }
  return dir;
}

function exposureOf(output: string, name: string): number {
  const match = new RegExp(`Overall exposure level for ${name.replaceAll('.', '\\.')}: (\\d+\\.\\d+)`).exec(output);
  expect(match, `no "Overall exposure level" line in:\n${output}`).not.toBeNull();
  return Number(match![1]);
}

describe.skipIf(!hasAnalyze)('systemd units (systemd-analyze)', () => {
  it.each(UNITS)('systemd-analyze verify %s prints nothing and exits 0', (name) => {
    const dir = resolvableCopies();
    const result = run('systemd-analyze', ['verify', `./${name}`], dir);
    expect(result.error).toBeUndefined();
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });

  it('verify is meaningful: it reports an unknown key and an ExecStart= binary that does not exist', () => {
    const dir = resolvableCopies();
    const { text } = readUnit(DAEMON);
    writeFileSync(path.join(dir, 'typo.service'), text.replace('KillMode=mixed', 'KillMode=mixed\nKillModes=mixed'));
    expect(run('systemd-analyze', ['verify', './typo.service'], dir).stderr).toContain("Unknown key 'KillModes'");
    const shipped = run('systemd-analyze', ['verify', path.join(SYSTEMD_DIR, DAEMON)], dir);
    // Only meaningful where the package is not installed (CI, dev machines): then the shipped path must be reported.
    if (!existsSync(INSTALLED_BIN)) expect(shipped.stderr).toContain(`${INSTALLED_BIN} is not executable`);
  });

  it.each(UNITS)('systemd-analyze security --offline=true rates %s at exposure 2.0 or lower', (name) => {
    const dir = resolvableCopies();
    // --threshold is in tenths: 20 means an overall exposure of 2.0.
    const result = run('systemd-analyze', ['security', '--offline=true', '--threshold=20', '--no-pager', `./${name}`], dir);
    expect(result.error).toBeUndefined();
    expect(result.stderr).toBe('');
    const exposure = exposureOf(result.stdout, name);
    expect(exposure).toBeLessThanOrEqual(2.0);
    expect(result.status).toBe(0);
  });
});

describe('systemd unit contents', () => {
  const daemon = readUnit(DAEMON).unit;
  const reconcile = readUnit(RECONCILE).unit;
  const one = (unit: Unit, key: string): string | undefined => {
    const values = unit.Service?.[key];
    return values?.[values.length - 1];
  };

  it('the daemon is a notify service that reloads on SIGHUP and does not restart on a bad config', () => {
    expect(one(daemon, 'Type')).toBe('notify');
    // Readiness and watchdog pings come from a spawned systemd-notify, not the main PID.
    expect(one(daemon, 'NotifyAccess')).toBe('all');
    expect(one(daemon, 'ExecStart')).toBe(`${INSTALLED_BIN} run`);
    // A reload that waits for the daemon's answer (a bare kill returns before the reload is done).
    expect(one(daemon, 'ExecReload')).toBe(`${INSTALLED_BIN} reload --pid $MAINPID`);
    expect(one(daemon, 'WatchdogSec')).toBeDefined();
    expect(one(daemon, 'Restart')).toBe('on-failure');
    expect(one(daemon, 'RestartPreventExitStatus')?.split(/\s+/)).toContain('78');
    // The daemon's own stop deadline (~60 s) must fit inside this.
    expect(one(daemon, 'TimeoutStopSec')).toBe('90');
    expect(daemon.Install?.WantedBy).toEqual(['multi-user.target']);
  });

  it('the reconcile unit is a oneshot `reconcile --now --wait SECONDS` without notify, watchdog or reload', () => {
    expect(one(reconcile, 'Type')).toBe('oneshot');
    // A bounded wait: the oneshot must not hang for ever behind the lock.
    expect(one(reconcile, 'ExecStart')).toMatch(new RegExp(`^${INSTALLED_BIN} reconcile --now --wait \\d+$`));
    for (const key of ['NotifyAccess', 'WatchdogSec', 'ExecReload', 'Restart']) expect(one(reconcile, key), key).toBeUndefined();
    // A cycle can take hours; the oneshot default start timeout (90 s) would kill it.
    expect(one(reconcile, 'TimeoutStartSec')).toBe('infinity');
  });

  it.each([
    [DAEMON, daemon],
    [RECONCILE, reconcile],
  ] as const)('%s: dedicated user, directories, token by credential, Node-compatible sandbox', (_name, unit) => {
    expect(one(unit, 'User')).toBe('compliance-sync');
    expect(one(unit, 'Group')).toBe('compliance-sync');
    for (const key of ['StateDirectory', 'CacheDirectory', 'ConfigurationDirectory']) expect(one(unit, key), key).toBe('compliance-sync');
    expect(unit.Service?.LoadCredential).toEqual(['x-bearer-token:/etc/compliance-sync/x-bearer-token']);
    // The token never travels through the environment.
    for (const key of ['Environment', 'EnvironmentFile', 'PassEnvironment', 'SetCredential']) {
      for (const value of unit.Service?.[key] ?? []) expect(value, key).not.toMatch(/token|bearer|secret/i);
    }
    // V8's JIT aborts under MemoryDenyWriteExecute=yes.
    expect(one(unit, 'MemoryDenyWriteExecute') ?? 'no').toMatch(/^(no|false|0|off)$/);
    // AF_UNIX: systemd-notify and NSS lookups; AF_INET/6: HTTPS.
    expect(one(unit, 'RestrictAddressFamilies')?.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    expect(unit.Service?.SystemCallFilter?.[0]).toBe('@system-service');
    expect(one(unit, 'SystemCallErrorNumber')).toBe('EPERM');
    expect(one(unit, 'ProtectSystem')).toBe('strict');
    expect(one(unit, 'CapabilityBoundingSet')).toBe('');
  });

  it('both units share the same user, directories and sandbox', () => {
    const perUnit = new Set(['Type', 'NotifyAccess', 'ExecStart', 'ExecReload', 'WatchdogSec', 'Restart', 'RestartSec', 'RestartPreventExitStatus', 'TimeoutStartSec']);
    const shared = (unit: Unit) => Object.fromEntries(Object.entries(unit.Service ?? {}).filter(([key]) => !perUnit.has(key)));
    expect(shared(reconcile)).toEqual(shared(daemon));
  });

  it.skipIf(!hasSysusers)('the sysusers.d entry creates the compliance-sync system user with its state dir as home', () => {
    const root = tempDir();
    mkdirSync(path.join(root, 'etc'));
    const result = run('systemd-sysusers', [`--root=${root}`, path.join(SYSTEMD_DIR, 'compliance-sync.conf')]);
    expect(result.stderr.trim().split('\n').filter((line) => line && !line.startsWith('Creating '))).toEqual([]);
    expect(result.status).toBe(0);
    const passwd = readFileSync(path.join(root, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^compliance-sync:x:\d+:\d+:compliance-sync daemon:\/var\/lib\/compliance-sync:\S*nologin$/m);
    expect(readFileSync(path.join(root, 'etc/group'), 'utf8')).toMatch(/^compliance-sync:x:\d+:/m);
  });
});
