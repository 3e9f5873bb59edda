import { isatty } from 'node:tty';
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { redactSecrets } from './secrets.js';

export type { Logger };

/**
 * Secrets stay out of logs by construction (only the API client holds the token; URLs pass through redactUrl);
 * these paths are the second layer.
 */
const REDACT_PATHS = [
  'token',
  'bearerToken',
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'upload_url',
  'download_url',
  '*.upload_url',
  '*.download_url',
];

/**
 * The process's logger. Off a terminal: JSON lines (one per state change) for journald and log shippers; on a terminal
 * (`logDestination`), human lines. `destination` defaults to stdout, as the daemon logs.
 */
export function createLogger(level: LevelWithSilent = 'info', destination: DestinationStream = logDestination(1)): Logger {
  return pino(
    {
      name: 'compliance-sync',
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Whatever a field or message holds (a server's echo included), the written line carries no secret.
      hooks: { streamWrite: redactSecrets },
      timestamp: pino.stdTimeFunctions.isoTime,
      // `pid` is in every line already (base): a call that names it again would write the key twice.
      formatters: { level: (label) => ({ level: label }), log: withoutPid },
    },
    destination,
  );
}

function withoutPid(object: Record<string, unknown>): Record<string, unknown> {
  if (!('pid' in object)) return object;
  const { pid: _pid, ...rest } = object;
  return rest;
}

/** Where logs to a file descriptor go: human lines when it is a terminal, JSON lines otherwise. */
export function logDestination(fd: 1 | 2): DestinationStream {
  if (isatty(fd)) return new TerminalLog(fd === 1 ? process.stdout : process.stderr);
  return pino.destination({ dest: fd, sync: true });
}

/** Fields every line has, or that the line's own words already say. */
const IMPLIED = new Set(['level', 'time', 'pid', 'name', 'msg', 'hostname']);
const LEVEL_COLOURS: Record<string, string> = { fatal: '\x1b[31m', error: '\x1b[31m', warn: '\x1b[33m' };

/**
 * A pino destination for a person at a terminal: `12:03:04 WARN  message  key=value …`, whole (long lines are
 * wrapped, never cut at the screen width). While a progress display owns the screen, lines go through
 * `divertTerminalLogs`'s writer so they appear above the bars instead of being overwritten by them.
 */
export class TerminalLog implements DestinationStream {
  constructor(private readonly stream: NodeJS.WriteStream) {}

  write(line: string): void {
    const text = formatLogLine(line, this.stream.hasColors?.() ?? false);
    if (!diverted) {
      this.stream.write(`${text}\n`);
      return;
    }
    // Progress bars switch the terminal's own wrapping off: wrap here, or the end of the line is lost.
    const width = Math.max(20, this.stream.columns ?? 80);
    const pieces: string[] = [];
    for (const physical of text.split('\n')) {
      for (let at = 0; at < physical.length || at === 0; at += width) pieces.push(physical.slice(at, at + width));
    }
    diverted(`${pieces.join('\n')}\n`);
  }
}

let diverted: ((text: string) => void) | null = null;

/** While a progress display owns the terminal, human log lines go to `writer` (its log); null gives them back. */
export function divertTerminalLogs(writer: ((text: string) => void) | null): void {
  diverted = writer;
}

/** One JSON log line as a human line: time, level, message, then the fields that say which cycle, shard, job, file. */
export function formatLogLine(line: string, colours = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const level = String(entry.level ?? 'info');
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const label = level.toUpperCase().padEnd(5);
  const colour = colours ? LEVEL_COLOURS[level] : undefined;
  const fields = Object.entries(entry)
    .filter(([key]) => !IMPLIED.has(key))
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  const head = [time, colour ? `${colour}${label}\x1b[0m` : label, String(entry.msg ?? '')].filter(Boolean).join(' ');
  return fields.length ? `${head}  ${fields.join(' ')}` : head;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value && typeof value === 'object' && 'message' in value && typeof (value as { message: unknown }).message === 'string') {
    return JSON.stringify((value as { message: string }).message);
  }
  return JSON.stringify(value);
}

/** Query parameters that make a URL a credential. */
const SECRET_PARAMS = /^(x-goog-signature|x-goog-credential|token|upload_id|signature|sig)$/i;

/** A URL safe to show: the secret query values replaced, so logs and errors still say which host and path failed. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAMS.test(key)) parsed.searchParams.set(key, 'REDACTED');
    }
    return parsed.toString();
  } catch {
    return url.replace(/\?.*$/, '?REDACTED');
  }
}
