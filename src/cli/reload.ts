import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { resolveConfigPath } from '../config/load.js';
import { AppError, ConfigError, EXIT, UsageError } from '../errors.js';
import { currentDaemon } from '../store/runLock.js';
import { configFromOptions, print, withConfigOption } from './context.js';

interface ReloadOptions {
  config?: string;
  pid?: string;
  timeout?: string;
}

/**
 * `reload`: SIGHUP to the daemon, then wait until it says how the reload went (in its lock record). The daemon unit
 * runs it as ExecReload=, so `systemctl reload` returns only when the new config is in force, and fails when the
 * daemon refused it; with `/bin/kill -HUP` systemd would call the reload done as soon as the signal was sent.
 */
export function registerReload(program: Command): void {
  withConfigOption(program.command('reload'))
    .description('ask the running daemon to reload its config, wait until it has, and say how it went (exit 78 when refused)')
    .option('--pid <pid>', 'the daemon’s PID (default: the one recorded beside the store; the unit passes $MAINPID)')
    .option('--timeout <seconds>', 'how long to wait for the daemon’s answer', '60')
    .action(async (options: ReloadOptions) => {
      const pid = options.pid === undefined ? undefined : positive(options.pid, '--pid');
      const timeoutMs = positive(options.timeout ?? '60', '--timeout') * 1000;
      let storePath: string;
      try {
        storePath = configFromOptions(options).store.path;
      } catch (err) {
        // An invalid edit: the daemon must still hear of it (it logs the field at fault and keeps its config), and
        // we wait for its answer like for any other, finding its record through the edited file's store.path.
        const fallback = err instanceof ConfigError && pid !== undefined ? storePathOf(resolveConfigPath(options.config)) : null;
        if (fallback === null) {
          if (err instanceof ConfigError && pid !== undefined) signal(pid);
          throw err;
        }
        storePath = fallback;
      }
      const daemon = currentDaemon(storePath);
      if (!daemon && pid === undefined) {
        throw new AppError('no_daemon', `no daemon runs on the store ${storePath}`, { hint: 'start it: systemctl start compliance-sync' });
      }
      // Our request is number `mine` or a later one; it is answered once `done` reaches it.
      const mine = (daemon?.reload?.requested ?? 0) + 1;
      signal(pid ?? daemon!.pid);
      if (!daemon) {
        print(`signalled pid ${pid}; no daemon record beside ${storePath} to confirm it (store.path changed? that takes a restart)`);
        return;
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = currentDaemon(storePath);
        const ack = now?.reload;
        if (ack && ack.done >= mine) {
          if (!ack.ok) throw new ConfigError(`the daemon refused the reload: ${ack.message}`, { hint: 'fix the field named above; check with `compliance-sync check-config`' });
          print(`reloaded: ${ack.message}`);
          return;
        }
        if (!now) throw new AppError('no_daemon', `the daemon on ${storePath} exited before answering the reload`, { hint: 'journalctl -u compliance-sync' });
        if (Date.now() >= deadline) {
          throw new AppError('reload_timeout', `the daemon did not answer the reload within ${timeoutMs / 1000} s`, {
            exitCode: EXIT.busy,
            hint: 'journalctl -u compliance-sync -n 50',
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
}

/** store.path of a config file that did not validate, resolved as parseConfig (src/config/load.ts) does; or null. */
function storePathOf(configPath: string): string | null {
  try {
    const raw = JSON.parse(readFileSync(configPath, 'utf8')) as { store?: { path?: unknown } };
    if (typeof raw.store?.path !== 'string') return null;
    const state = process.env.STATE_DIRECTORY;
    return path.resolve(state ? state.split(':')[0]! : path.dirname(path.resolve(configPath)), raw.store.path);
  } catch {
    return null;
  }
}

function signal(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    throw new AppError('no_daemon', `cannot signal the daemon (pid ${pid}): ${(err as NodeJS.ErrnoException).code}`, {
      hint: 'systemctl status compliance-sync',
    });
  }
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) throw new UsageError(`${flag} takes a positive number (got "${value}")`, { hint: `compliance-sync reload ${flag} 30` });
  return n;
}
