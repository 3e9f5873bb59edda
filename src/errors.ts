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
