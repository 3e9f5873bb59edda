import cron from 'node-cron';
import type { Command } from 'commander';
import { maskSecret, resolveBearerToken } from '../config/token.js';
import { ConfigError } from '../errors.js';
import { configFromOptions, print, printJson, withConfigOption } from './context.js';

/** The next `count` times a cron expression fires, in its time zone. */
export function nextRuns(expression: string, timezone: string, count: number, from = new Date()): Date[] {
  const task = cron.createTask(expression, () => undefined, { timezone });
  try {
    const runs: Date[] = [];
    // getNextRuns starts from now; skip anything before `from` so callers can ask about the future.
    for (const run of task.getNextRuns(count + 8)) if (run >= from && runs.length < count) runs.push(run);
    return runs;
  } finally {
    void task.destroy();
  }
}

export function registerCheckConfig(program: Command): void {
  withConfigOption(program.command('check-config'))
    .description('validate the config, print it resolved (secrets masked) and the next scheduled runs')
    .option('--json', 'print as JSON')
    .action((options: { config?: string; json?: boolean }) => {
      const config = configFromOptions(options);
      let token: { source: string; masked: string; warning?: string } | { error: string };
      try {
        const found = resolveBearerToken(config);
        token = { source: found.source, masked: maskSecret(found.token), ...(found.warning ? { warning: found.warning } : {}) };
      } catch (err) {
        token = { error: (err as Error).message };
      }
      const runs = nextRuns(config.schedule.cron, config.schedule.timezone, 5).map((date) => date.toISOString());
      if (options.json) {
        printJson({ config, bearerToken: token, nextRuns: runs });
      } else {
        print(`config ${config.configPath}: valid`);
        print(JSON.stringify(config, null, 2));
        print('error' in token ? `bearer token: missing — ${token.error}` : `bearer token: ${token.masked} from ${token.source}`);
        if ('warning' in token) process.stderr.write(`compliance-sync: warning: ${token.warning}\n`);
        print(`next runs (${config.schedule.timezone}, "${config.schedule.cron}"):`);
        for (const run of runs) print(`  ${run}`);
      }
      if ('error' in token) {
        throw new ConfigError(token.error, { hint: 'set api.bearerTokenFile in the config, or export X_BEARER_TOKEN' });
      }
    });
}
