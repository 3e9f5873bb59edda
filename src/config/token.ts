import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { Config, Env } from './load.js';

export interface BearerToken {
  readonly token: string;
  /** Where it came from, safe to print: a file path or an environment variable's name. */
  readonly source: string;
  /** Set when the token file can be read by others than its owner: say so, and how to fix it. */
  readonly warning?: string;
}

/**
 * The app-only bearer token: api.bearerTokenFile, else $CREDENTIALS_DIRECTORY/x-bearer-token (systemd LoadCredential=),
 * else $X_BEARER_TOKEN. Never part of the config file, so it is read here, on demand, and re-read on reload.
 */
export function resolveBearerToken(config: Config, env: Env = process.env): BearerToken {
  const file =
    config.api.bearerTokenFile ?? (env.CREDENTIALS_DIRECTORY ? path.join(env.CREDENTIALS_DIRECTORY, 'x-bearer-token') : undefined);
  if (file) {
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`cannot read the bearer token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
        cause: err,
        hint: 'create the file (mode 0600) with the app-only bearer token, or fix api.bearerTokenFile',
      });
    }
    if (!token) throw new ConfigError(`the bearer token file ${file} is empty`, { hint: 'write the token into it' });
    const warning = exposedTo(file);
    return warning ? { token, source: file, warning } : { token, source: file };
  }
  const fromEnv = env.X_BEARER_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: '$X_BEARER_TOKEN' };
  throw new ConfigError('no bearer token: none of api.bearerTokenFile, $CREDENTIALS_DIRECTORY/x-bearer-token, $X_BEARER_TOKEN is set', {
    hint: 'set api.bearerTokenFile in the config, or export X_BEARER_TOKEN',
  });
}

/** Who besides the owner may read the token file ("group and others"), as a warning naming the fix; else undefined. */
function exposedTo(file: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined;
  }
  const readers = [mode & 0o040 ? 'its group' : '', mode & 0o004 ? 'every user' : ''].filter(Boolean);
  if (readers.length === 0) return undefined;
  return `the bearer token file ${file} is readable by ${readers.join(' and ')} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`;
}

/** Shows only enough of a secret to tell two apart. */
export function maskSecret(secret: string): string {
  return secret.length <= 8 ? '****' : `${secret.slice(0, 2)}…${secret.slice(-2)} (${secret.length} chars)`;
}
