import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreBusyError } from '../../src/errors.js';
import { createStore } from '../../src/store/migrate.js';
import { acquireDaemonLock, acquireRunLock, currentDaemon, currentLockHolder, waitForRunLock } from '../../src/store/runLock.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, useTempDir, writeJson } from '../helpers/tmp.js';

const tempDir = useTempDir();
const holders: ChildProcess[] = [];
afterEach(async () => {
  for (const child of holders.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});

/** Another process that takes the run lock through the built module, says so, and keeps it until killed. */
async function holdInAnotherProcess(base: string, command: string): Promise<ChildProcess> {
  const module = path.join(REPO_ROOT, 'dist/store/runLock.js');
  const script = `const { acquireRunLock } = await import(${JSON.stringify(module)});
acquireRunLock(${JSON.stringify(base)}, ${JSON.stringify(command)});
process.stdout.write('held\\n');
setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  holders.push(child);
  await once(child.stdout!, 'data');
  return child;
}

describe('the store run lock', () => {
  it('is exclusive while its holder lives, and says who holds it', () => {
    const store = path.join(tempDir(), 'store.db');
    const lock = acquireRunLock(store, 'run');
    expect(() => acquireRunLock(store, 'reconcile --now')).toThrow(StoreBusyError);
    expect(() => acquireRunLock(store, 'reconcile --now')).toThrow(/in use by run \(pid \d+/);
    expect(currentLockHolder(store)?.command).toBe('run');
    lock.release();
    expect(currentLockHolder(store)).toBeNull();
    acquireRunLock(store, 'reconcile --now').release();
  });

  it('holds against another process, and a SIGKILL of the holder releases it', async () => {
    const store = path.join(tempDir(), 'store.db');
    const holder = await holdInAnotherProcess(store, 'reconcile --now');
    expect(currentLockHolder(store)).toMatchObject({ pid: holder.pid, command: 'reconcile --now' });
    expect(() => acquireRunLock(store, 'run')).toThrow(new RegExp(`in use by reconcile --now \\(pid ${holder.pid} on `));
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    // Its record is still there, and means nothing: the kernel dropped the lock with the process.
    expect(existsSync(`${store}.lock.holder`)).toBe(true);
    expect(currentLockHolder(store)).toBeNull();
    const lock = acquireRunLock(store, 'run');
    expect(currentLockHolder(store)).toMatchObject({ pid: process.pid, command: 'run' });
    lock.release();
  });

  it('does not depend on the holder being visible: a live holder whose record names a dead PID still holds', async () => {
    // What a sandboxed unit sees (ProtectProc=invisible): no /proc entry for the holder. The record is not consulted.
    const store = path.join(tempDir(), 'store.db');
    await holdInAnotherProcess(store, 'run');
    writeFileSync(`${store}.lock.holder`, JSON.stringify({ pid: 999_999_999, host: 'elsewhere', command: 'run', since: '2026-01-01T00:00:00Z' }));
    expect(() => acquireRunLock(store, 'reconcile --now')).toThrow(StoreBusyError);
  });

  it('takes over a stale record written under another hostname, and says how to check a live one there', async () => {
    const store = path.join(tempDir(), 'store.db');
    writeFileSync(`${store}.lock.holder`, JSON.stringify({ pid: 4242, host: 'old-container', command: 'run', since: '2026-01-01T00:00:00Z' }));
    expect(currentLockHolder(store)).toBeNull();
    const lock = acquireRunLock(store, 'reconcile --now');
    expect(JSON.parse(readFileSync(`${store}.lock.holder`, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();

    // A live holder that recorded another host: the message says where to look, and that nothing needs removing.
    const holder = await holdInAnotherProcess(store, 'run');
    writeFileSync(`${store}.lock.holder`, JSON.stringify({ pid: holder.pid, host: 'other-host', command: 'run', since: '2026-01-01T00:00:00Z' }));
    try {
      acquireRunLock(store, 'reconcile --now');
      expect.unreachable();
    } catch (err) {
      expect((err as StoreBusyError).hint).toMatch(/another host \(other-host\).*ssh other-host ps -p \d+.*nothing needs removing/);
    }
  });

  it('replaces the JSON lock file an earlier version left behind', () => {
    const store = path.join(tempDir(), 'store.db');
    writeFileSync(`${store}.lock`, JSON.stringify({ pid: 1, host: 'x', command: 'run', since: '2025-01-01T00:00:00Z' }));
    acquireRunLock(store, 'reconcile --now').release();
  });

  it('waits for the holder, says what it waits for, and gives up after its timeout', async () => {
    const store = path.join(tempDir(), 'store.db');
    const holder = await holdInAnotherProcess(store, 'run');
    const heard: (string | undefined)[] = [];
    const waiting = waitForRunLock(store, 'reconcile --now', { timeoutMs: 300, intervalMs: 50, onWaiting: (h) => heard.push(h?.command) });
    await expect(waiting).rejects.toThrow(new RegExp(`gave up after waiting \\d+ s for the run lock: the store is in use by run \\(pid ${holder.pid}`));
    expect(heard).toEqual(['run']);

    const later = waitForRunLock(store, 'reconcile --now', { timeoutMs: 30_000, intervalMs: 50 });
    holder.kill('SIGKILL');
    const lock = await later;
    expect(currentLockHolder(store)?.pid).toBe(process.pid);
    lock.release();
  });

  it('the daemon lock is separate from the run lock: one daemon per store, and its record says what it does', () => {
    const store = path.join(tempDir(), 'store.db');
    const daemon = acquireDaemonLock(store);
    daemon.describe({ state: 'idle; next run x' });
    expect(currentDaemon(store)).toMatchObject({ pid: process.pid, state: 'idle; next run x' });
    expect(() => acquireDaemonLock(store)).toThrow(/a daemon already runs on the store/);
    acquireRunLock(store, 'reconcile --now').release();
    daemon.release();
    expect(currentDaemon(store)).toBeNull();
  });
});

describe('reconcile --now --wait (spawned)', () => {
  it('exits 75 after its timeout, naming what it waited for and who holds it', async () => {
    const dir = tempDir();
    const store = path.join(dir, 'store.db');
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' }, api: { baseUrl: 'http://127.0.0.1:9' } });
    createStore(store).close();
    const holder = await holdInAnotherProcess(store, 'run');
    const run = runCli(['reconcile', '--now', '--wait', '1', '--config', config], { env: { X_BEARER_TOKEN: 'x' } });
    expect(run.code).toBe(75);
    expect(run.stderr).toContain(`waiting for the run lock of ${store}, held by run (pid ${holder.pid} on `);
    expect(run.stderr).toMatch(/of at most 1 s/);
    expect(run.stderr).toMatch(/gave up after waiting \d+ s for the run lock: the store is in use by run/);
    expect(run.stderr).toMatch(/^Try: the daemon is running a cycle/m);

    const bad = runCli(['reconcile', '--now', '--wait', 'soon', '--config', config], { env: { X_BEARER_TOKEN: 'x' } });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/--wait takes a number of seconds \(got "soon"\)/);
  });
});
