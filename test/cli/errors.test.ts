import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, type CliResult } from '../helpers/cli.js';
import { CLI, useFileTempDir, useTempDir, writeJson } from '../helpers/tmp.js';
import { makeWorld, spawnCli, type Spawned, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const fileTempDir = useFileTempDir();
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** Root ignores file modes: permission tests run the CLI as nobody, through util-linux's setpriv. */
function runAsNobody(args: string[], cwd: string): CliResult {
  const result = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, CLI, ...args], {
    encoding: 'utf8',
    cwd,
    env: cleanEnv(),
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a shell script in its own mount namespace (a private tmpfs there is a small, real disk). */
function inMountNamespace(script: string, env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('unshare', ['-m', 'sh', '-ec', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const canMountTmpfs = (() => {
  if (!isRoot) return false;
  return spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt']).status === 0;
})();

/** The error contract: the last two lines of stderr are `compliance-sync: …` and `Try: …`, nothing else (no stack). */
function expectOneLineAndTry(stderr: string, message: RegExp): void {
  const lines = stderr.trim().split('\n').filter((line) => !line.startsWith('{'));
  expect(lines, stderr).toHaveLength(2);
  expect(lines[0]).toMatch(/^compliance-sync: /);
  expect(lines[0]).toMatch(message);
  expect(lines[1]).toMatch(/^Try: \S/);
  expect(stderr).not.toMatch(/unexpected error|\n\s+at /);
}

describe('foreseeable errors: one line, a Try: line and the exit code', () => {
  /**
   * The locked store: apply, a writer, waits out the store's busy timeout (10 s, src/store/open.ts) before it exits 75.
   * That wait is started here and checked by the last case, so that it overlaps the other cases instead of adding to
   * them. Its folder lasts for the file (fileTempDir): tempDir's are removed after each case.
   */
  let locked: { world: World; holder: Database.Database; run: Spawned; results: string } | undefined;
  beforeAll(async () => {
    const dir = fileTempDir();
    const world = await makeWorld(dir, { tweets: 200, users: 20 });
    const results = path.join(dir, 'results.ndjson');
    writeFileSync(results, `${JSON.stringify({ id: '1', action: 'delete', reason: 'deleted', created_at: '2019-08-10T12:22:39.022Z' })}\n`);
    const holder = new Database(world.storePath);
    holder.exec('BEGIN EXCLUSIVE');
    const run = spawnCli(['apply', '--type', 'tweets', '--config', world.configPath, results], world.env);
    locked = { world, holder, run, results };
  });
  afterAll(async () => {
    if (!locked) return;
    const { world, holder, run } = locked;
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await run.exit;
    if (holder.open) holder.close();
    await world.close();
  });

  it('a file that is not SQLite, and a truncated store, exit 78 naming the file', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'notes.db'), 'these are my notes, not a database\n'.repeat(200));
    writeJson(path.join(dir, 'notes.json'), { store: { path: 'notes.db' } });
    const notSqlite = runCli(['status', '--config', path.join(dir, 'notes.json')]);
    expect(notSqlite.code).toBe(78);
    expectOneLineAndTry(notSqlite.stderr, /notes\.db is not a SQLite database/);

    const world = await makeWorld(tempDir(), { tweets: 3000, users: 300 });
    await world.close();
    truncateSync(world.storePath, 8192);
    const truncated = runCli(['status', '--config', world.configPath]);
    expect(truncated.code).toBe(78);
    expectOneLineAndTry(truncated.stderr, /store .*store\.db is damaged or truncated/);
  });

  it.skipIf(!isRoot)('a read-only store exits 78 and says SQLite writes beside it', async () => {
    const world = await makeWorld(tempDir(), { tweets: 200, users: 20 });
    await world.close();
    chmodSync(world.dir, 0o755);
    chmodSync(world.storePath, 0o644);
    const result = runAsNobody(['status', '--config', world.configPath], world.dir);
    expect(result.code).toBe(78);
    expectOneLineAndTry(result.stderr, /cannot write the store .*store\.db \(SQLITE_READONLY/);
    expect(result.stderr).toMatch(/Try: .*-wal and -shm/);
  });

  it.skipIf(!isRoot)('an unwritable rejects file exits 78 naming it and saying what to do', async () => {
    const world = await makeWorld(tempDir(), { tweets: 200, users: 20 });
    await world.close();
    chmodSync(world.dir, 0o755);
    chownSync(world.dir, NOBODY, NOBODY);
    chownSync(world.storePath, NOBODY, NOBODY);
    const results = path.join(tempDir(), 'results');
    mkdirSync(results, { mode: 0o755 });
    chmodSync(path.dirname(results), 0o755);
    const file = path.join(results, 'tweets.ndjson');
    writeFileSync(file, 'not json\n', { mode: 0o644 });
    const result = runAsNobody(['apply', '--type', 'tweets', '--config', world.configPath, file], world.dir);
    expect(result.code).toBe(78);
    expectOneLineAndTry(result.stderr, new RegExp(`cannot write ${file}\\.rejects\\.ndjson: permission denied`));
    expect(result.stderr).toMatch(/Try: the rejected lines go beside the results file/);
  });

  it('apply given a folder is a usage error (64)', async () => {
    const world = await makeWorld(tempDir(), { tweets: 200, users: 20 });
    await world.close();
    const result = runCli(['apply', '--type', 'tweets', '--config', world.configPath, world.dir], { env: world.env });
    expect(result.code).toBe(64);
    expectOneLineAndTry(result.stderr, /is a folder; apply takes one results file/);
  });

  it('export --out refuses a file and a folder of other files, and replaces its own stale shards', async () => {
    const world = await makeWorld(tempDir(), { tweets: 2500, users: 20 });
    await world.close();
    const file = path.join(world.dir, 'a-file.txt');
    writeFileSync(file, 'mine\n');
    const onFile = runCli(['export', '--type', 'tweets', '--out', file, '--config', world.configPath]);
    expect(onFile.code).toBe(64);
    expectOneLineAndTry(onFile.stderr, /--out .*a-file\.txt is a file/);

    const busy = path.join(world.dir, 'busy');
    mkdirSync(busy);
    writeFileSync(path.join(busy, 'notes.md'), 'keep me\n');
    const onFolder = runCli(['export', '--type', 'tweets', '--out', busy, '--config', world.configPath]);
    expect(onFolder.code).toBe(64);
    expectOneLineAndTry(onFolder.stderr, /--out .*busy is not empty \(notes\.md\)/);
    expect(readFileSync(path.join(busy, 'notes.md'), 'utf8')).toBe('keep me\n');

    const shards = path.join(world.dir, 'shards');
    expect(runCli(['export', '--type', 'tweets', '--out', shards, '--shard-size', '500', '--config', world.configPath]).code).toBe(0);
    expect(readdirSync(shards)).toHaveLength(5);
    const again = runCli(['export', '--type', 'tweets', '--out', shards, '--shard-size', '1000', '--config', world.configPath]);
    expect(again.code).toBe(0);
    // Three new shards, and none of the five old ones left to be mistaken for current.
    expect(readdirSync(shards).sort()).toEqual(['tweets-00001.txt', 'tweets-00002.txt', 'tweets-00003.txt']);
    expect(readFileSync(path.join(shards, 'tweets-00003.txt'), 'utf8').trim().split('\n')).toHaveLength(500);
  });

  it('an untrusted TLS certificate fails at once (78) with a NODE_EXTRA_CA_CERTS hint', async (context) => {
    const certDir = tempDir();
    const cert = path.join(certDir, 'cert.pem');
    const key = path.join(certDir, 'key.pem');
    // An EC key: made at once, where an RSA key takes a quarter of a second of CPU; the trust check is the same.
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    if (made.status !== 0 || !existsSync(cert)) return context.skip();
    const world = await makeWorld(tempDir(), { tweets: 200, users: 20, emulator: { tls: { cert: readFileSync(cert), key: readFileSync(key) } } });
    try {
      const run = spawnCli(['reconcile', '--now', '--type', 'tweets', '--config', world.configPath], world.env);
      const { code } = await run.exit;
      expect(code).toBe(78);
      expect(run.stderr()).toMatch(/^compliance-sync: the TLS certificate of https:\/\/127\.0\.0\.1:\d+\/2\/compliance\/jobs is not trusted: SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT/m);
      expect(run.stderr()).toMatch(/^Try: .*NODE_EXTRA_CA_CERTS=/m);
      // No retry loop: the job endpoint was asked once.
      expect(run.stderr().match(/temporary API failure/g) ?? []).toHaveLength(0);

      // With the CA given, the same run goes through.
      const trusted = spawnCli(['reconcile', '--now', '--type', 'tweets', '--config', world.configPath], { ...world.env, NODE_EXTRA_CA_CERTS: cert });
      expect((await trusted.exit).code).toBe(0);
    } finally {
      await world.close();
    }
  });

  it('output piped into a reader that stops early (head) ends quietly', async () => {
    // 200 shard lines to print (shard size 10).
    const world = await makeWorld(tempDir(), { tweets: 2_000, users: 20 });
    await world.close();
    // The reader goes away before the first byte: every write of the CLI meets EPIPE.
    const child = spawn(process.execPath, [CLI, 'export', '--type', 'tweets', '--out', path.join(world.dir, 'out'), '--shard-size', '10', '--config', world.configPath], {
      env: world.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it.skipIf(!canMountTmpfs)('a full disk under the work folder names it and says progress is kept; the rerun resumes', async () => {
    const world = await makeWorld(tempDir(), { tweets: 3000, users: 20, config: { paths: { work: 'work' } } });
    try {
      const work = path.join(world.dir, 'work');
      mkdirSync(work);
      // 16 KiB: less than one shard file of 1,000 IDs.
      const full = await inMountNamespace(
        `mount -t tmpfs -o size=16k tmpfs '${work}'; exec '${process.execPath}' '${CLI}' reconcile --now --type tweets --config '${world.configPath}'`,
        world.env,
      );
      expect(full.code).toBe(1);
      expectOneLineAndTry(full.stderr, new RegExp(`no space left writing ${work}.* \\(ENOSPC\\); progress up to the last committed step is kept`));
      const status = runCli(['status', '--config', world.configPath], { env: world.env });
      expect(status.stdout).toMatch(/unfinished, no process is running it.*tweets cycle #1/);
      const rerun = spawnCli(['reconcile', '--now', '--type', 'tweets', '--config', world.configPath], world.env);
      expect((await rerun.exit).code).toBe(0);
      expect(rerun.stdout()).toMatch(/cycle\s+#1/);
    } finally {
      await world.close();
    }
  });

  it.skipIf(!canMountTmpfs)('a full disk under the store names the store and says progress is kept', async () => {
    const world = await makeWorld(tempDir(), { tweets: 3000, users: 20 });
    await world.close();
    const small = path.join(world.dir, 'small');
    mkdirSync(small);
    const results = path.join(world.dir, 'results.ndjson');
    const ids = (new Database(world.storePath, { readonly: true }).defaultSafeIntegers(true).prepare('SELECT id FROM tweets').all() as { id: bigint }[]).map((r) => String(r.id));
    writeFileSync(results, ids.map((id) => JSON.stringify({ id, action: 'delete', reason: 'deleted', created_at: '2019-08-10T12:22:39.022Z' })).join('\n') + '\n');
    const size = Math.ceil(readFileSync(world.storePath).length / 4096) * 4096;
    // Room for the store and its -shm, not for the WAL the deletions write.
    const full = await inMountNamespace(
      `mount -t tmpfs -o size=${size + 48 * 1024} tmpfs '${small}'; cp '${world.storePath}' '${small}/store.db'; ` +
        `printf '%s' '{"store":{"path":"store.db"},"paths":{"work":"${path.join(world.dir, 'work')}"}}' > '${small}/config.json'; ` +
        `exec '${process.execPath}' '${CLI}' apply --type tweets --confirm-deletions --config '${small}/config.json' '${results}'`,
      world.env,
    );
    expect(full.code).toBe(1);
    expectOneLineAndTry(full.stderr, /cannot write the store .*small\/store\.db: the disk is full \(SQLITE_FULL\); progress up to the last committed step is kept/);
  });

  // Last, so that the CLI's wait for the lock (started in beforeAll) has run alongside the cases above.
  it('a store locked by another writer exits 75, and nothing is lost', async () => {
    const { world, holder, run, results } = locked!;
    try {
      const { code } = await run.exit;
      expect(code).toBe(75);
      expectOneLineAndTry(run.stderr(), /store .*store\.db is locked by another writer \(SQLITE_BUSY\)/);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(runCli(['apply', '--type', 'tweets', '--config', world.configPath, results], { env: world.env }).code).toBe(0);
  });
});
