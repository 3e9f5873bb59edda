import { chownSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreBusyError, StoreError } from '../errors.js';

/**
 * Who holds a lock: for messages only. Whether a lock is held is decided by the operating system alone (see
 * `acquireRunLock`), never from this record, so a record left by a dead holder or written on another host means
 * nothing.
 */
export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
  /** What the holder is doing, for holders that say (the daemon: idle, running a cycle, waiting for the run lock). */
  state?: string;
  /** The daemon's last handled reload, so `reload` can wait for it and tell its outcome. */
  reload?: ReloadAck;
}

export interface ReloadAck {
  /** Reload requests (SIGHUP) the daemon received since it started. */
  requested: number;
  /** The requests answered: every request up to this number was followed by a reload that read the file after it. */
  done: number;
  /** The outcome of the last reload done. */
  ok: boolean;
  message: string;
}

export interface RunLock {
  /** The lock file (a small SQLite database; its content is never used). */
  readonly file: string;
  /** Rewrites the holder's description with these fields; the lock itself is unaffected. */
  describe(fields: Partial<Pick<LockHolder, 'state' | 'reload'>>): void;
  release(): void;
}

/** How long a taker retries a lock that a `status` probe happens to be reading at that instant. */
const TAKE_RETRY_MS = 250;

/**
 * The store's run lock: one process at a time runs cycles on a store (the daemon while a cycle runs, or
 * `reconcile --now`). The lock is an exclusive SQLite transaction on `<store>.lock`: SQLite takes it with a POSIX
 * record lock, which the kernel drops when the holder exits in any way (SIGKILL included) and which works across PID,
 * user and mount namespaces — nothing depends on seeing the holder in /proc, which a sandboxed unit cannot
 * (ProtectProc=invisible). Who holds it is written beside it in `<store>.lock.holder`, for messages.
 */
export function acquireRunLock(base: string, command: string): RunLock {
  const lock = tryLock(`${base}.lock`, command);
  if (lock) return lock;
  throw busyError(base, currentLockHolder(base));
}

/** The run lock if it is free now, else null (the holder is `currentLockHolder`). */
export function tryAcquireRunLock(base: string, command: string): RunLock | null {
  return tryLock(`${base}.lock`, command);
}

/**
 * The daemon lock: one daemon per store, held for the daemon's whole life (it takes the run lock only while a cycle
 * runs). Its holder record says what the daemon is doing, for `status`.
 */
export function acquireDaemonLock(storePath: string): RunLock {
  const lock = tryLock(`${storePath}.daemon.lock`, 'run');
  if (lock) return lock;
  const holder = currentDaemon(storePath);
  throw new StoreBusyError(`a daemon already runs on the store ${storePath}${holder ? ` (${describeHolder(holder)})` : ''}`, {
    hint: 'one daemon per store: stop the other one first (`systemctl stop compliance-sync`), or use its `systemctl reload`',
  });
}

/** Who holds the run lock now, or null when nobody does (a leftover record of a dead holder does not count). */
export function currentLockHolder(base: string): LockHolder | null {
  return heldBy(`${base}.lock`);
}

/** The running daemon of this store, with what it is doing, or null when none runs. */
export function currentDaemon(storePath: string): LockHolder | null {
  return heldBy(`${storePath}.daemon.lock`);
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up after this long with a StoreBusyError (exit 75); no limit when undefined. */
  timeoutMs?: number;
  /** Called when the wait begins and then every `reportEveryMs`, with the holder at that moment. */
  onWaiting?: (holder: LockHolder | null, waitedMs: number) => void;
  reportEveryMs?: number;
  intervalMs?: number;
}

/** Waits until the run lock can be taken (for `--wait`), saying what it waits for; bounded by `timeoutMs`. */
export async function waitForRunLock(base: string, command: string, options: WaitOptions = {}): Promise<RunLock> {
  const started = Date.now();
  const reportEveryMs = options.reportEveryMs ?? 30_000;
  let reportedAt: number | null = null;
  for (;;) {
    const lock = tryAcquireRunLock(base, command);
    if (lock) return lock;
    const holder = currentLockHolder(base);
    const waited = Date.now() - started;
    // Said before any give-up, so even the shortest wait names what it waited for.
    if (reportedAt === null || Date.now() - reportedAt >= reportEveryMs) {
      reportedAt = Date.now();
      options.onWaiting?.(holder, waited);
    }
    if (options.timeoutMs !== undefined && waited >= options.timeoutMs) {
      throw busyError(base, holder, `gave up after waiting ${Math.round(waited / 1000)} s for the run lock: `);
    }
    options.signal?.throwIfAborted();
    const left = options.timeoutMs === undefined ? Infinity : options.timeoutMs - waited;
    await sleep(Math.max(10, Math.min(options.intervalMs ?? 1000, left)), options.signal);
  }
}

/** "reconcile --now (pid 12 on host-a, since …)". */
export function describeHolder(holder: LockHolder): string {
  if (holder.pid === 0) return holder.command;
  return `${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
}

function busyError(base: string, holder: LockHolder | null, prefix = ''): StoreBusyError {
  if (!holder) {
    return new StoreBusyError(`${prefix}the store ${base} is in use by another process that has not said who it is yet`, {
      hint: 'retry in a moment, or pass --wait SECONDS',
    });
  }
  const elsewhere = holder.host !== hostname();
  const remote = elsewhere
    ? ` It runs on another host (${holder.host}) sharing this folder: check it there (\`ssh ${holder.host} ps -p ${holder.pid}\`); the lock is an OS file lock, so a holder that died never blocks and nothing needs removing.`
    : '';
  let hint: string;
  if (holder.command === 'run') {
    hint = `the daemon is running a cycle and frees the store when it ends: pass --wait SECONDS to run after it, or see \`compliance-sync status\`.${remote}`;
  } else {
    hint = `wait for it to finish (\`reconcile --now --wait SECONDS\` waits for it).${remote}`;
  }
  return new StoreBusyError(`${prefix}the store is in use by ${describeHolder(holder)}`, { hint });
}

function tryLock(file: string, command: string): RunLock | null {
  const db = openLockFile(file);
  const taken = lockNow(db, file);
  if (!taken) {
    db.close();
    return null;
  }
  const holderFile = `${file}.holder`;
  let holder: LockHolder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  let released = false;
  const lock: RunLock = {
    file,
    describe(fields) {
      if (released) return;
      holder = { ...holder, ...fields };
      writeHolder(holderFile, holder);
    },
    release() {
      if (released) return;
      released = true;
      // The record first, while the lock still makes it ours; the lock file stays (removing a file others may have
      // open would let two processes lock two different files).
      rmSync(holderFile, { force: true });
      db.close();
    },
  };
  try {
    writeHolder(holderFile, holder);
  } catch (err) {
    lock.release();
    throw err;
  }
  return lock;
}

function openLockFile(file: string): Database.Database {
  const created = !existsSync(file);
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw new StoreError('lock_io', `cannot open the run lock ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'check that the folder holding the store is writable by this user',
    });
  }
  if (created) sameOwnerAsFolder(file);
  return db;
}

/** Takes the exclusive lock now or returns false; other failures throw. */
function lockNow(db: Database.Database, file: string): boolean {
  db.pragma(`busy_timeout = ${TAKE_RETRY_MS}`);
  try {
    db.exec('BEGIN EXCLUSIVE');
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY')) return false;
    if (code === 'SQLITE_NOTADB' && replaceLegacyRecord(file)) {
      db.close();
      return lockNow(openLockFile(file), file);
    }
    db.close();
    throw new StoreError('lock_io', `cannot take the run lock ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: `check the permissions of ${file} and its folder`,
    });
  }
}

/** Earlier versions kept the holder as JSON in the lock file itself: such a file is only a record; replace it. */
function replaceLegacyRecord(file: string): boolean {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown };
    if (typeof parsed.pid !== 'number') return false;
  } catch {
    return false;
  }
  rmSync(file, { force: true });
  return true;
}

/** Probes the lock read-only (nothing is created or changed): the holder's record if it is held, else null. */
function heldBy(file: string): LockHolder | null {
  if (!existsSync(file)) return null;
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch {
    return null;
  }
  try {
    db.pragma('busy_timeout = 0');
    // Not a schema read: the cheapest statement that needs the lock file's read lock, which its holder keeps from us.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return null;
  } catch (err) {
    if (!((err as { code?: string }).code ?? '').startsWith('SQLITE_BUSY')) return null;
    // Taken a moment ago, its record not written yet (or unreadable to us): held all the same.
    return readHolder(`${file}.holder`) ?? { pid: 0, host: hostname(), command: 'another process (not yet recorded)', since: new Date().toISOString() };
  } finally {
    db.close();
  }
}

function readHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    return typeof parsed.pid === 'number' ? parsed : null;
  } catch {
    return null;
  }
}

/** Temp file and rename, so a reader never sees half a record. */
function writeHolder(file: string, holder: LockHolder): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(holder)}\n`, { mode: 0o644 });
  renameSync(temp, file);
}

/**
 * A lock file created by root (a hand-run `reconcile --now` as root on the service's store) would lock the service's
 * own user out of it for good: give it to the owner of the folder it is in.
 */
function sameOwnerAsFolder(file: string): void {
  if (process.getuid?.() !== 0) return;
  try {
    const folder = statSync(path.dirname(file));
    if (folder.uid !== 0) chownSync(file, folder.uid, folder.gid);
  } catch {
    /* best effort: the lock works either way for this process */
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
