import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreBusyError } from '../../src/errors.js';
import { acquireRunLock, currentLockHolder } from '../../src/store/runLock.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

/** A PID that surely belongs to no running process: a child that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
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

  it('takes over a lock whose holder died (a SIGKILL leaves the file behind)', () => {
    const store = path.join(tempDir(), 'store.db');
    writeFileSync(`${store}.lock`, JSON.stringify({ pid: deadPid(), host: hostname(), command: 'run', since: '2026-01-01T00:00:00Z' }));
    const lock = acquireRunLock(store, 'reconcile --now');
    expect(JSON.parse(readFileSync(`${store}.lock`, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('takes over a lock whose PID was reused by another process', () => {
    const store = path.join(tempDir(), 'store.db');
    // Our own (live) PID, but a start time that is not ours: the holder is gone and the PID was reused.
    writeFileSync(`${store}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), command: 'run', since: '2026-01-01T00:00:00Z', started: '1' }));
    acquireRunLock(store, 'reconcile --now').release();
  });
});
