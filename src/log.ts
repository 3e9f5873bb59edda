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

export function createLogger(level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'compliance-sync',
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Whatever a field or message holds (a server's echo included), the written line carries no secret.
      hooks: { streamWrite: redactSecrets },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
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
