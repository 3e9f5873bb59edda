import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { StoreBusyError, StoreError } from '../errors.js';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
  /** The process's start time in clock ticks since boot (Linux), so a reused PID is not mistaken for the holder. */
  started?: string | null;
}

export interface RunLock {
  readonly file: string;
  release(): void;
}

/**
 * The store's run lock: one process at a time runs cycles on a store (the daemon, or `reconcile --now`).
 * A lock file beside the store, created exclusively, holding who took it; a holder that died (crash, SIGKILL) on this
 * host leaves a stale file that the next taker detects and replaces.
 */
export function acquireRunLock(storePath: string, command: string): RunLock {
  const file = `${storePath}.lock`;
  const me: LockHolder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString(), started: processStart(process.pid) };
  for (let tries = 0; tries < 3; tries++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError('lock_io', `cannot create the run lock ${file}: ${(err as NodeJS.ErrnoException).code}`, {
          cause: err,
          hint: 'check that the folder holding the store is writable by this user',
        });
      }
      const holder = readLockHolder(file);
      if (holder && isAlive(holder)) {
        throw new StoreBusyError(
          `the store is in use by ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.since})`,
          {
            hint:
              holder.command === 'run'
                ? `the daemon holds the store: start a cycle in it with \`kill -USR1 ${holder.pid}\` (or \`systemctl kill -s USR1 compliance-sync\`), or pass --wait`
                : 'wait for it to finish (`reconcile --now` can wait for it with --wait)',
          },
        );
      }
      // The holder is gone. Take its file away atomically (rename) and check it is the stale one we saw: two takers
      // racing must not both remove a file, or the second would remove the first one's fresh lock.
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue; // someone else took it first; look again
      }
      const moved = readLockHolder(aside);
      if (moved && isAlive(moved)) {
        // We moved a fresh lock that another taker had just written: put it back (link fails if a third one exists).
        try {
          linkSync(aside, file);
        } catch {
          /* a third taker holds it now; theirs stands */
        }
      }
      unlinkSync(aside);
      continue;
    }
    writeSync(fd, `${JSON.stringify(me)}\n`);
    closeSync(fd);
    let released = false;
    return {
      file,
      release() {
        if (released) return;
        released = true;
        const holder = readLockHolder(file);
        if (holder?.pid === me.pid && holder.host === me.host) unlinkSync(file);
      },
    };
  }
  throw new StoreBusyError(`could not take the run lock ${file}: other processes keep taking it`, { hint: 'retry' });
}

/** Who holds the lock now, if anyone alive does. */
export function currentLockHolder(storePath: string): LockHolder | null {
  const holder = readLockHolder(`${storePath}.lock`);
  return holder && isAlive(holder) ? holder : null;
}

/** Waits until the lock can be taken (for `--wait`), checking every `intervalMs`. */
export async function waitForRunLock(storePath: string, command: string, signal?: AbortSignal, intervalMs = 1000): Promise<RunLock> {
  for (;;) {
    try {
      return acquireRunLock(storePath, command);
    } catch (err) {
      if (!(err instanceof StoreBusyError)) throw err;
    }
    signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function readLockHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    return typeof parsed.pid === 'number' ? parsed : null;
  } catch {
    return null;
  }
}

function isAlive(holder: LockHolder): boolean {
  // A lock from another host (a shared folder) cannot be checked: treat it as held.
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !holder.started || processStart(holder.pid) === holder.started;
}

/** Field 22 of /proc/PID/stat (start time), or null where there is no /proc. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}
