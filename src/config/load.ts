import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, DEFAULT_POLICY, type ParsedConfig } from './schema.js';

/** Deeply read-only: a validated config is never mutated; a reload builds a new one. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type Config = DeepReadonly<
  ParsedConfig & {
    /** Absolute path of the file this config came from. */
    configPath: string;
    paths: { work: string };
    reconcile: ParsedConfig['reconcile'] & { policy: Record<string, ParsedConfig['reconcile']['policy'][string]> };
  }
>;

export type Env = Readonly<Record<string, string | undefined>>;

/** Which file to read: --config, else $COMPLIANCE_SYNC_CONFIG, else $CONFIGURATION_DIRECTORY/config.json, else ./config.json. */
export function resolveConfigPath(flag: string | undefined, env: Env = process.env, cwd = process.cwd()): string {
  const chosen =
    flag ??
    env.COMPLIANCE_SYNC_CONFIG ??
    (env.CONFIGURATION_DIRECTORY ? path.join(env.CONFIGURATION_DIRECTORY, 'config.json') : undefined) ??
    'config.json';
  return path.resolve(cwd, chosen);
}

/** Reads, parses and validates the config file into an immutable object. Throws ConfigError naming each bad field. */
export function loadConfig(configPath: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT' ? `config file not found: ${configPath}` : `cannot read config file ${configPath}: ${code ?? String(err)}`,
      { cause: err, hint: 'pass --config FILE, or set COMPLIANCE_SYNC_CONFIG; config.example.json is a starting point' },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${configPath} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(raw, configPath, env);
}

/**
 * Validates an already-parsed JSON value as config. Relative paths are resolved against the config file's folder,
 * except a relative store path under systemd, which is resolved against $STATE_DIRECTORY.
 */
export function parseConfig(raw: unknown, configPath: string, env: Env = process.env): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const lines = result.error.issues.map(formatIssue);
    throw new ConfigError(`invalid config ${configPath}:\n  ${lines.join('\n  ')}`);
  }
  const parsed = result.data;
  const tableProblems = tableMappingProblems(parsed.store.tables);
  if (tableProblems.length) throw new ConfigError(`invalid config ${configPath}:\n  ${tableProblems.join('\n  ')}`);
  const base = path.dirname(path.resolve(configPath));
  // Under systemd the state lives in $STATE_DIRECTORY (the config folder is read-only there): a relative store path
  // means a file in it.
  const storePath = path.resolve(env.STATE_DIRECTORY ? env.STATE_DIRECTORY.split(':')[0]! : base, parsed.store.path);
  const work = parsed.paths.work
    ? path.resolve(base, parsed.paths.work)
    : env.CACHE_DIRECTORY
      ? path.resolve(env.CACHE_DIRECTORY.split(':')[0]!)
      : `${storePath}.work`;
  const config = {
    ...parsed,
    configPath: path.resolve(configPath),
    store: { ...parsed.store, path: storePath },
    api: {
      ...parsed.api,
      baseUrl: parsed.api.baseUrl.replace(/\/+$/, ''),
      ...(parsed.api.bearerTokenFile ? { bearerTokenFile: path.resolve(base, parsed.api.bearerTokenFile) } : {}),
    },
    paths: { work },
    reconcile: { ...parsed.reconcile, policy: { ...DEFAULT_POLICY, ...parsed.reconcile.policy } },
  };
  return deepFreeze(config) as Config;
}

/**
 * Mappings the schema cannot see alone: one table for both types would make a users cycle delete tweets by user ID,
 * and a `cs_*` table is the ledger itself.
 */
function tableMappingProblems(tables: ParsedConfig['store']['tables']): string[] {
  const problems: string[] = [];
  // SQLite table names are case-insensitive.
  if (tables.tweets.table.toLowerCase() === tables.users.table.toLowerCase()) {
    problems.push(`store.tables.users.table: must differ from store.tables.tweets.table (both are ${JSON.stringify(tables.users.table)}); tweets and users need tables of their own`);
  }
  for (const type of ['tweets', 'users'] as const) {
    const table = tables[type].table;
    if (/^cs_/i.test(table)) {
      problems.push(`store.tables.${type}.table: ${JSON.stringify(table)} is a table of compliance-sync's own ledger (cs_*); name the table holding your ${type}`);
    }
  }
  return problems;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${at === '(top level)' ? key : `${at}.${key}`}: unknown key`).join('\n  ');
  }
  const got = 'input' in issue && issue.input !== undefined ? ` (got ${JSON.stringify(issue.input)})` : issue.code === 'invalid_type' ? ' (missing)' : '';
  return `${at}: ${lowerFirst(issue.message)}${got}`;
}

function lowerFirst(message: string): string {
  return message.charAt(0).toLowerCase() + message.slice(1);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
