import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { DEFAULT_POLICY } from '../../src/config/schema.js';
import { outcomeFor } from '../../src/emulator/outcomes.js';
import { openStore } from '../../src/store/open.js';
// `it` with a per-test `scope` (temp dirs, worlds, receivers): some tests here run side by side.
import { itScoped as it } from '../helpers/scope.js';
import { SEED, spawnCli, type World } from '../helpers/world.js';

async function reconcile(w: World, args: string[] = []) {
  const run = spawnCli(['reconcile', '--now', '--config', w.configPath, ...args], w.env);
  const { code } = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** `status --json` and `status`, side by side: both only read the store. */
async function status(w: World) {
  const run = spawnCli(['status', '--json', '--config', w.configPath], w.env);
  const text = spawnCli(['status', '--config', w.configPath], w.env);
  const [json, plain] = await Promise.all([run.exit, text.exit]);
  expect(json.code).toBe(0);
  expect(plain.code).toBe(0);
  return { json: JSON.parse(run.stdout()), text: text.stdout() };
}

/** The stored IDs of a type whose emulated result the default policy turns into a deletion. */
function expectedDeletions(storePath: string, type: 'tweets' | 'users'): string[] {
  const db = openStore(storePath, { readonly: true });
  const ids = (db.prepare(`SELECT id FROM ${type} ORDER BY id`).pluck().all() as bigint[]).map(String);
  db.close();
  return ids.filter((id) => {
    const outcome = outcomeFor(type, id, SEED);
    return outcome !== null && outcome.action === 'delete' && DEFAULT_POLICY[outcome.reason] === 'delete';
  });
}

function storeId(storePath: string): string {
  const db = openStore(storePath, { readonly: true });
  const id = String(db.prepare('SELECT store_id FROM cs_store').pluck().get());
  db.close();
  return id;
}

/** A hook command: copies its stdin (and the IDs file, when the payload names one) into `<dir>/<hook>-<type>.json`. */
function recorderScript(dir: string): string {
  const file = path.join(dir, 'record-hook.mjs');
  writeFileSync(
    file,
    `import { readFileSync, writeFileSync } from 'node:fs';
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const file = payload.idsFile ? readFileSync(payload.idsFile, 'utf8') : null;
writeFileSync(process.argv[2] + '/' + process.env.COMPLIANCE_SYNC_HOOK + '-' + payload.type + '.json', JSON.stringify({ payload, file }));
`,
  );
  return file;
}

// Each test has its own store, emulator and receivers; much of their time is spent in hook backoffs and timeouts, so
// they run side by side.
describe.concurrent('hooks (reconcile --now spawned; a command and an HTTP receiver on loopback)', () => {
  it('tells a command which IDs each cycle deleted, as decimal strings, and the cycle summary', async ({ scope }) => {
    const dir = scope.tempDir();
    const script = recorderScript(dir);
    const w = await scope.world({
      tweets: 800,
      users: 80,
      config: {
        jobs: { shardSize: 500, pollIntervalSeconds: 0.1 },
        hooks: { onDeletions: { command: [process.execPath, script, dir] }, onCycleClosed: { command: [process.execPath, script, dir] } },
      },
    });
    const tweets = expectedDeletions(w.storePath, 'tweets');
    const users = expectedDeletions(w.storePath, 'users');
    expect(tweets.length).toBeGreaterThan(10);
    // Tweets first: run side by side, a user's cascade could delete a tweet before its shard is exported.
    expect((await reconcile(w, ['--type', 'tweets'])).code).toBe(0);
    expect((await reconcile(w, ['--type', 'users'])).code).toBe(0);

    const read = (name: string) => JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8'));
    const tweetDeletions = read('onDeletions-tweets');
    expect(tweetDeletions.file).toBeNull();
    expect({ ...tweetDeletions.payload, ids: [...tweetDeletions.payload.ids].sort() }).toEqual({
      event: 'deletions',
      store: w.storePath,
      storeId: storeId(w.storePath),
      type: 'tweets',
      cycleId: tweetDeletions.payload.cycleId,
      table: 'tweets',
      count: tweets.length,
      ids: [...tweets].sort(),
      idsFile: null,
      authorTweetsDeleted: false,
      complete: true,
    });
    const userDeletions = read('onDeletions-users').payload;
    expect([...userDeletions.ids].sort()).toEqual([...users].sort());
    expect(userDeletions.authorTweetsDeleted).toBe(true);

    const closed = read('onCycleClosed-tweets').payload;
    expect(closed.event).toBe('cycle_closed');
    expect(closed.summary.state).toBe('closed');
    expect(closed.summary.idsChecked).toBe(800);
    expect(closed.summary.actions.delete).toBe(tweets.length);

    const { json, text } = await status(w);
    expect(json.hookDeliveries).toHaveLength(4);
    for (const delivery of json.hookDeliveries) expect(delivery).toMatchObject({ state: 'delivered', attempts: 1, lastError: null });
    expect(json.metrics.hook_deliveries_total).toEqual(
      expect.arrayContaining([
        { hook: 'onDeletions', state: 'delivered', deliveries: 2, attempts: 2 },
        { hook: 'onCycleClosed', state: 'delivered', deliveries: 2, attempts: 2 },
      ]),
    );
    expect(text).toContain('onDeletions for cycle');
  }, 180_000);

  it('names a file of the IDs above hooks.maxInlineIds', async ({ scope }) => {
    const dir = scope.tempDir();
    const script = recorderScript(dir);
    const w = await scope.world({
      tweets: 600,
      users: 60,
      config: { hooks: { onDeletions: { command: [process.execPath, script, dir] }, maxInlineIds: 3 } },
    });
    const tweets = expectedDeletions(w.storePath, 'tweets');
    expect((await reconcile(w, ['--type', 'tweets'])).code).toBe(0);
    const { payload, file } = JSON.parse(readFileSync(path.join(dir, 'onDeletions-tweets.json'), 'utf8'));
    expect(payload.ids).toBeNull();
    expect(payload.count).toBe(tweets.length);
    expect(payload.idsFile).toBe(path.join(w.dir, 'store.db.work', 'hooks', `tweets-cycle-${payload.cycleId}.deleted.ids`));
    expect(file.split('\n').filter(Boolean).sort()).toEqual([...tweets].sort());
  }, 120_000);

  it('POSTs to a URL, retries after failures with backoff, and counts the attempts', async ({ scope }) => {
    const bodies: string[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        bodies.push(body);
        expect(req.method).toBe('POST');
        expect(req.headers['content-type']).toBe('application/json');
        res.writeHead(bodies.length <= 2 ? 503 : 204).end();
      });
    });
    const url = `http://127.0.0.1:${await scope.listen(server)}/hook?token=receiver-secret`;
    const w = await scope.world({ tweets: 300, users: 30, config: { hooks: { onCycleClosed: { url }, maxAttempts: 4 } } });
    const result = await reconcile(w, ['--type', 'tweets']);
    expect(result.code).toBe(0);
    expect(bodies).toHaveLength(3);
    // The same payload each time, exactly what the ledger recorded for the cycle.
    expect(new Set(bodies).size).toBe(1);
    const payload = JSON.parse(bodies[0]!);
    expect(payload).toMatchObject({ event: 'cycle_closed', type: 'tweets', storeId: storeId(w.storePath) });
    expect(payload.summary.cycleId).toBe(payload.cycleId);
    // Two failures logged with the URL's secret redacted, then delivered.
    expect(result.stderr.match(/hook delivery failed; retrying/g)).toHaveLength(2);
    expect(result.stderr).toContain('HTTP 503');
    expect(result.stderr).not.toContain('receiver-secret');
    const { json } = await status(w);
    expect(json.hookDeliveries[0]).toMatchObject({ hook: 'onCycleClosed', state: 'delivered', attempts: 3 });
  }, 120_000);

  it('bounds each attempt by hooks.timeoutSeconds and shows the failure in status, without failing the cycle', async ({ scope }) => {
    const dir = scope.tempDir();
    const sleeper = path.join(dir, 'sleep.mjs');
    writeFileSync(sleeper, 'setTimeout(() => {}, 60_000);\n');
    // A receiver that never answers.
    const server = createServer(() => undefined);
    const url = `http://127.0.0.1:${await scope.listen(server)}/silent`;
    const w = await scope.world({
      tweets: 300,
      users: 30,
      config: {
        hooks: { onCycleClosed: { url }, onDeletions: { command: [process.execPath, sleeper] }, timeoutSeconds: 0.3, maxAttempts: 2 },
      },
    });
    const result = await reconcile(w, ['--type', 'tweets']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/state\s+closed/);
    const { json, text } = await status(w);
    const byHook = Object.fromEntries(json.hookDeliveries.map((d: { hook: string }) => [d.hook, d]));
    expect(byHook.onCycleClosed).toMatchObject({ state: 'failed', attempts: 2, lastError: `POST ${url}: no answer within 0.3 s` });
    expect(byHook.onDeletions).toMatchObject({ state: 'failed', attempts: 2 });
    expect(byHook.onDeletions.lastError).toBe(`${process.execPath} did not finish within 0.3 s (killed)`);
    expect(text).toMatch(/onDeletions for cycle #\d+: FAILED after 2 attempts: .* did not finish within 0\.3 s \(killed\)/);
    expect(json.lastCycles[0]).toMatchObject({ type: 'tweets', state: 'closed' });
  }, 120_000);
});
