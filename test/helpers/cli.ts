import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { CLI } from './tmp.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would (`node dist/cli.js …`) and returns its exit code and output. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): CliResult {
  const result: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: options.cwd,
    input: options.input,
    env: { ...cleanEnv(), ...options.env },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The test's environment without the variables that steer config and token lookup. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['COMPLIANCE_SYNC_CONFIG', 'CONFIGURATION_DIRECTORY', 'CACHE_DIRECTORY', 'STATE_DIRECTORY', 'CREDENTIALS_DIRECTORY', 'X_BEARER_TOKEN', 'NOTIFY_SOCKET']) {
    delete env[key];
  }
  return env;
}
