import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parseConfig } from '../config/load.js';
import { outcomeFor } from '../emulator/outcomes.js';
import { EXIT } from '../errors.js';
import { demoTweet, firstDemoTweets, seedStore, type DemoTweet } from '../store/demoData.js';
import { createStore } from '../store/migrate.js';
import type { Db } from '../store/open.js';
import { acquireRunLock } from '../store/runLock.js';
import { positiveInteger, print } from './context.js';
import { foregroundLogger, runCyclesInForeground } from './foreground.js';
import { formatCycleSummaries } from './summary.js';

const SEED = 'compliance-sync-demo';

interface DemoOptions {
  dir: string;
  tweets: number;
  users: number;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole loop on a fresh demo store: seed it, start the emulator, run a full cycle, show what changed')
    .option('--dir <dir>', 'folder for the demo store and its config (recreated each run)', 'demo')
    .option('--tweets <n>', 'tweets in the demo store', positiveInteger, 200_000)
    .option('--users <n>', 'users in the demo store', positiveInteger, 20_000)
    .action(async (options: DemoOptions) => {
      const dir = path.resolve(options.dir);
      const { tweets, users } = options;
      rmSync(path.join(dir, 'demo.db'), { force: true });
      rmSync(path.join(dir, 'demo.db-wal'), { force: true });
      rmSync(path.join(dir, 'demo.db-shm'), { force: true });
      rmSync(path.join(dir, 'work'), { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });

      const started = Date.now();
      print(`creating a demo store with ${tweets} tweets and ${users} users in ${dir} …`);
      const seedDb = createStore(path.join(dir, 'demo.db'));
      seedStore(seedDb, { tweets, users, seed: 2026 });
      const examples = pickExamples(seedDb);
      const before = examples.map((example) => ({ ...example, row: demoTweet(seedDb, example.id) }));
      seedDb.close();

      const token = randomBytes(16).toString('hex');
      // A generous rate limit: X grants 150 requests per 15 minutes, which would make a demo of minutes out of seconds.
      const { startEmulator } = await import('../emulator/server.js'); // loaded only here: other commands start fast
      const emulator = await startEmulator({ token, seed: SEED, processingMs: 300, rateLimit: { limit: 10_000 } });
      // The token is a file beside the config (0600), so that the config runs again against a restarted emulator.
      const tokenFile = path.join(dir, 'x-bearer-token');
      rmSync(tokenFile, { force: true });
      writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      const port = new URL(emulator.url).port;
      const raw = {
        $comment:
          `Written by \`compliance-sync demo\`. api.baseUrl is the built-in emulator of X's API that the demo started on a free port (${port}); ` +
          `it stopped when the demo ended. x-bearer-token holds the random token the demo gave that emulator (not an X token). ` +
          `To run this config again: compliance-sync emulator --port ${port} --token "$(cat ${path.relative(process.cwd(), tokenFile)})" ` +
          `and, in another shell, compliance-sync reconcile --now --config ${path.relative(process.cwd(), path.join(dir, 'config.json'))}. ` +
          `status and report need neither.`,
        store: { path: 'demo.db' },
        api: { baseUrl: emulator.url, bearerTokenFile: 'x-bearer-token', timeoutSeconds: 30 },
        jobs: { shardSize: 50_000, pollIntervalSeconds: 0.25 },
        paths: { work: 'work' },
      };
      const configPath = path.join(dir, 'config.json');
      writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`);
      const env = process.env;
      const config = parseConfig(raw, configPath, env);
      print(`emulator listening on ${emulator.url}; running reconcile --now on both types …`);

      const interactive = process.stderr.isTTY === true;
      try {
        await runCyclesInForeground(
          {
            config,
            logger: foregroundLogger('info', interactive),
            interactive,
            env,
            takeLock: () => acquireRunLock(config.store.path, 'demo'),
            types: config.schedule.types,
            cycle: { trigger: 'manual' },
          },
          (summaries, runtime, everyShardApplied) => {
            print('');
            print(formatCycleSummaries(summaries));
            print('\nthree tweets, before → after:');
            for (const example of before) {
              print(`\n  ${example.label} (the emulator reported: ${example.outcome})`);
              print(`    before: ${describeRow(example.row)}`);
              print(`    after:  ${describeRow(demoTweet(runtime.db, example.id))}`);
            }
            print(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s. Look around:`);
            print(`  node dist/cli.js status --config ${path.relative(process.cwd(), configPath)}`);
            print(`  node dist/cli.js report --config ${path.relative(process.cwd(), configPath)}`);
            print(`  sqlite3 ${path.relative(process.cwd(), config.store.path)} "SELECT compliance_state, count(*) FROM tweets GROUP BY 1"`);
            process.exitCode = everyShardApplied ? EXIT.ok : EXIT.failure;
          },
        );
      } finally {
        await emulator.close();
      }
    });
}

interface Example {
  id: string;
  label: string;
  outcome: string;
}

/** A deleted tweet, a geo-scrubbed one and a protected one, by the emulator's outcomes, with an unaffected author. */
function pickExamples(db: Db): Example[] {
  const wanted: [string, (reason: string, action: string) => boolean][] = [
    ['a deleted tweet', (reason) => reason === 'deleted'],
    ['a geo-tagged tweet whose location was scrubbed', (_reason, action) => action === 'scrub_geo'],
    ['a tweet of a protected account', (reason) => reason === 'protected'],
  ];
  const rows = firstDemoTweets(db, 20_000);
  const examples: Example[] = [];
  for (const [label, matches] of wanted) {
    const row = rows.find((r) => {
      const outcome = outcomeFor('tweets', String(r.id), SEED);
      const authorClean = outcomeFor('users', String(r.author_id), SEED) === null;
      const needsGeo = label.includes('geo') ? r.geo_lat !== null : true;
      return outcome !== null && authorClean && needsGeo && matches(outcome.reason, outcome.action);
    });
    if (row) {
      const outcome = outcomeFor('tweets', String(row.id), SEED)!;
      examples.push({ id: String(row.id), label, outcome: `${outcome.action}/${outcome.reason}` });
    }
  }
  return examples;
}

function describeRow(row: DemoTweet | undefined): string {
  if (!row) return '(row deleted)';
  const geo = row.geo_lat === null ? 'no geo' : `geo ${row.geo_lat},${row.geo_lon} place ${row.place_id}`;
  return `id ${row.id} "${row.text}" · ${geo} · compliance_state ${row.compliance_state ?? 'NULL'}`;
}
