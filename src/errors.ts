import path from 'node:path';

/**
 * Errors are values with a stable code, a message a person can act on, a `Try:` hint, and a cause.
 * The CLI boundary maps them to exit codes (sysexits: 64 usage, 75 temporary failure, 78 config).
 */

export const EXIT = { ok: 0, failure: 1, usage: 64, busy: 75, config: 78 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface AppErrorOptions {
  hint?: string;
  cause?: unknown;
  exitCode?: ExitCode;
}

export class AppError extends Error {
  override readonly name: string = 'AppError';
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? EXIT.failure;
  }
}

/** The config file is missing, unreadable or invalid. Exit 78 so systemd does not restart-loop. */
export class ConfigError extends AppError {
  override readonly name = 'ConfigError';
  constructor(message: string, options: Omit<AppErrorOptions, 'exitCode'> = {}) {
    super('bad_config', message, { hint: 'fix the config file (see config.example.json)', ...options, exitCode: EXIT.config });
  }
}

/** The store cannot be opened, migrated or written as asked. */
export class StoreError extends AppError {
  override readonly name = 'StoreError';
  constructor(code: string, message: string, options: Omit<AppErrorOptions, 'exitCode'> = {}) {
    super(code, message, { ...options, exitCode: EXIT.failure });
  }
}

/** Another process holds the store's run lock or SQLite's write lock. */
export class StoreBusyError extends AppError {
  override readonly name = 'StoreBusyError';
  constructor(message: string, options: Omit<AppErrorOptions, 'exitCode'> = {}) {
    super('store_busy', message, { ...options, exitCode: EXIT.busy });
  }
}

/** The command line itself is wrong. */
export class UsageError extends AppError {
  override readonly name = 'UsageError';
  constructor(message: string, options: Omit<AppErrorOptions, 'exitCode'> = {}) {
    super('usage', message, { ...options, exitCode: EXIT.usage });
  }
}

/** A short description of any thrown value, for logs and messages. */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The files a low-level error may be about, so that "disk full" or "permission denied" can name them even when the
 * error itself carries no path (a write on a file descriptor, SQLite's codes). Set once the config is loaded.
 */
const knownPaths: { store?: string; work?: string } = {};

export function rememberPaths(paths: { store: string; work: string }): void {
  knownPaths.store = paths.store;
  knownPaths.work = paths.work;
}

/** TLS failures of a certificate chain Node does not trust: retrying cannot help, a CA bundle can. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CERTIFICATE.has(code);
}

export const UNTRUSTED_CERTIFICATE_HINT =
  'if the server (a proxy, the emulator with --tls-cert) uses a private CA, start with NODE_EXTRA_CA_CERTS=/path/to/ca.pem; otherwise check api.baseUrl and the system clock';

/**
 * SQLite's busy, full, read-only, not-a-database and corrupt failures as errors that say what to do; null for any
 * other error. `file` is the store.
 */
export function fromSqliteError(err: unknown, file: string | undefined = knownPaths.store): AppError | null {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return null;
  const store = file ?? 'the store';
  const options = { cause: err };
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreBusyError(`the store ${store} is locked by another writer (${code}); nothing was lost`, {
      ...options,
      hint: 'rerun when the other writer is done (the daemon retries by itself, with backoff)',
    });
  }
  if (code === 'SQLITE_FULL') {
    return new AppError('disk_full', `cannot write the store ${store}: the disk is full (${code}); progress up to the last committed step is kept`, {
      ...options,
      hint: `free space on the file system of ${store} and rerun; the run resumes where it stopped`,
    });
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new AppError(
      'store_damaged',
      code === 'SQLITE_NOTADB' ? `${store} is not a SQLite database (or its header is damaged)` : `the store ${store} is damaged or truncated (${code})`,
      { ...options, exitCode: EXIT.config, hint: `check store.path; if the file was truncated, restore it from a backup (\`sqlite3 ${store} 'PRAGMA integrity_check'\` shows the damage)` },
    );
  }
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    return new AppError('store_readonly', `cannot write the store ${store} (${code})`, {
      ...options,
      exitCode: EXIT.config,
      hint: `make ${store} and its folder writable by this user (SQLite also writes ${path.basename(store)}-wal and -shm beside it)`,
    });
  }
  return null;
}

/** Node's file-system failures (disk full, permissions) as errors naming the file; null for any other error. */
function fromFileError(err: unknown): AppError | null {
  const { code, path: file } = (err ?? {}) as NodeJS.ErrnoException;
  const where = file ?? knownPaths.work ?? 'the work folder';
  const options = { cause: err };
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new AppError('disk_full', `no space left writing ${where} (${code}); progress up to the last committed step is kept`, {
      ...options,
      hint: `free space on the file system of ${where} (or set paths.work to a bigger one) and rerun; the run resumes where it stopped`,
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new AppError('not_writable', `cannot write ${where}: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'} (${code})`, {
      ...options,
      exitCode: EXIT.config,
      hint: file?.endsWith('.rejects.ndjson')
        ? `the rejected lines go beside the results file: make ${path.dirname(file)} writable by this user, or apply a copy of the file from a writable folder`
        : `make ${file ? path.dirname(file) : where} writable by this user, or point the setting that names it elsewhere`,
    });
  }
  return null;
}

/** Any thrown value as the error the CLI reports: ours as they are, foreseeable system failures translated. */
export function explainError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  return fromSqliteError(err) ?? fromFileError(err);
}
