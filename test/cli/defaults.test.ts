import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { resolveBearerToken } from '../../src/config/token.js';
import { ConfigError } from '../../src/errors.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { CLI, useFileTempDir, useTempDir, writeJson } from '../helpers/tmp.js';
import { makeWorld, spawnCli, TOKEN, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const fileTempDir = useFileTempDir();
const modeOf = (file: string) => statSync(file).mode & 0o777;

/**
 * One cycle of both types for the whole file, its work folder watched while it runs: the file-mode test reads the
 * modes seen, the report and status test reads the store the cycle left (one world and one spawned cycle, not two).
 */
let reconciled: { world: World; exit: { code: number | null; signal: NodeJS.Signals | null }; modes: Map<string, number> };
beforeAll(async () => {
  const world = await makeWorld(fileTempDir(), { tweets: 1500, users: 10, config: { paths: { work: 'work' } } });
  const run = spawnCli(['reconcile', '--now', '--config', world.configPath], world.env);
  const work = path.join(world.dir, 'work');
  // Files come and go while the cycle runs (the cycle deletes its folder when it closes): look while it runs.
  const modes = new Map<string, number>();
  const look = (file: string) => {
    try {
      modes.set(file, modeOf(file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  };
  while ((run.child.exitCode ?? null) === null) {
    try {
      for (const cycle of readdirSync(work)) {
        look(path.join(work, cycle));
        for (const name of readdirSync(path.join(work, cycle))) look(path.join(work, cycle, name));
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  reconciled = { world, exit: await run.exit, modes };
});
afterAll(async () => {
  await reconciled?.world.close();
});

/** The CLI under umask 000, the least careful setting a service could have. */
function runWithUmask0(args: string[], env: NodeJS.ProcessEnv = {}) {
  const quoted = args.map((arg) => `'${arg}'`).join(' ');
  return spawnSync('sh', ['-c', `umask 000; exec '${process.execPath}' '${CLI}' ${quoted}`], { encoding: 'utf8', env: { ...cleanEnv(), ...env } });
}

describe('safe defaults for files', () => {
  it('the store, its WAL and -shm, shard files and rejects are created 0600 whatever the umask', () => {
    const dir = tempDir();
    const config = writeJson(path.join(dir, 'config.json'), { store: { path: 'store.db' } });
    expect(runWithUmask0(['migrate', '--create', '--config', config]).status).toBe(0);
    const store = path.join(dir, 'store.db');
    expect(modeOf(store)).toBe(0o600);
    // SQLite gives -wal and -shm the database file's mode; they exist while a connection writes.
    const db = new Database(store);
    db.exec("INSERT INTO tweets (id, author_id) VALUES (1460716588177498114, 1)");
    expect(modeOf(`${store}-wal`)).toBe(0o600);
    expect(modeOf(`${store}-shm`)).toBe(0o600);
    db.close();

    const out = path.join(dir, 'shards');
    expect(runWithUmask0(['export', '--type', 'tweets', '--out', out, '--config', config]).status).toBe(0);
    expect(readdirSync(out).map((name) => modeOf(path.join(out, name)))).toEqual([0o600]);

    const results = path.join(dir, 'results.ndjson');
    // One usable line beside the rejected one: a file whose every line is rejected is a failure, not a run.
    writeFileSync(results, '{"id":"1460716588177498114","action":"scrub_geo","created_at":"2021-11-16T21:00:00.000Z","reason":"scrub_geo"}\nnot json\n');
    expect(runWithUmask0(['apply', '--type', 'tweets', '--config', config, results]).status).toBe(0);
    expect(modeOf(`${results}.rejects.ndjson`)).toBe(0o600);
  });

  it('work files of a cycle (shards, results) are 0600 in 0700 folders', () => {
    const { world, exit, modes } = reconciled;
    const seen = [...modes.keys()];
    for (const [file, mode] of modes) expect(mode, file).toBe(/cycle-\d+$/.test(file) ? 0o700 : 0o600);
    expect(exit.code).toBe(0);
    expect(seen.some((file) => file.endsWith('.ids'))).toBe(true);
    expect(seen.some((file) => file.endsWith('.results.ndjson'))).toBe(true);
    expect(modeOf(path.join(world.dir, 'work'))).toBe(0o700);
  });

  it('a token file readable by group or others is used, with a warning naming it and chmod 600', () => {
    const dir = tempDir();
    const file = path.join(dir, 'token');
    writeFileSync(file, `${TOKEN}\n`);
    chmodSync(file, 0o644);
    const config = parseConfig({ store: { path: 's.db' }, api: { bearerTokenFile: 'token' } }, path.join(dir, 'config.json'), {});
    const open = resolveBearerToken(config, {});
    expect(open.token).toBe(TOKEN);
    expect(open.warning).toBe(`the bearer token file ${file} is readable by its group and every user (mode 0644); run: chmod 600 ${file}`);
    chmodSync(file, 0o600);
    expect(resolveBearerToken(config, {}).warning).toBeUndefined();

    chmodSync(file, 0o640);
    writeJson(path.join(dir, 'config.json'), { store: { path: 's.db' }, api: { bearerTokenFile: 'token' } });
    const check = runCli(['check-config', '--config', path.join(dir, 'config.json')]);
    expect(check.code).toBe(0);
    expect(check.stderr).toContain(`compliance-sync: warning: the bearer token file ${file} is readable by its group (mode 0640); run: chmod 600 ${file}`);
    expect(check.stdout + check.stderr).not.toContain(TOKEN);
  });
});

describe('table mappings the validator refuses', () => {
  const parse = (tables: Record<string, unknown>) => () => parseConfig({ store: { path: 's.db', tables } }, '/etc/cs/config.json', {});

  it('one table for tweets and users, whatever the case', () => {
    expect(parse({ users: { table: 'Tweets' } })).toThrow(ConfigError);
    expect(parse({ users: { table: 'Tweets' } })).toThrow(/store\.tables\.users\.table: must differ from store\.tables\.tweets\.table \(both are "Tweets"\)/);
    expect(parse({ tweets: { table: 'posts' }, users: { table: 'posts' } })).toThrow(/store\.tables\.users\.table: must differ/);
  });

  it('a cs_* table, which is the ledger', () => {
    expect(parse({ tweets: { table: 'cs_cycles' } })).toThrow(/store\.tables\.tweets\.table: "cs_cycles" is a table of compliance-sync's own ledger/);
    expect(parse({ users: { table: 'CS_jobs' } })).toThrow(/store\.tables\.users\.table: "CS_jobs"/);
    expect(parse({ tweets: { table: 'posts' }, users: { table: 'people' } })).not.toThrow();
  });

  it('is refused by the CLI with exit 78 and the key', () => {
    const dir = tempDir();
    writeJson(path.join(dir, 'config.json'), { store: { path: 's.db', tables: { users: { table: 'tweets' } } } });
    const result = runCli(['check-config', '--config', path.join(dir, 'config.json')]);
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/store\.tables\.users\.table: must differ/);
    expect(existsSync(path.join(dir, 's.db'))).toBe(false);
  });
});

describe('docs and behaviour agree', () => {
  it('report --out FILE writes the report there; status says when no daemon runs', () => {
    const { world, exit } = reconciled;
    expect(exit.code).toBe(0);
    const file = path.join(world.dir, 'report.md');
    const report = runCli(['report', '--out', file, '--config', world.configPath], { env: world.env });
    expect(report.code).toBe(0);
    expect(report.stdout).toBe(`report written to ${file}\n`);
    expect(readFileSync(file, 'utf8')).toMatch(/^# Compliance report\n[\s\S]*\| IDs checked \| 1500 \| 10 \|/);
    const json = runCli(['report', '--format', 'json', '--out', path.join(world.dir, 'report.json'), '--config', world.configPath], { env: world.env });
    expect(json.code).toBe(0);
    expect(JSON.parse(readFileSync(path.join(world.dir, 'report.json'), 'utf8')).types).toHaveLength(2);
    const onFolder = runCli(['report', '--out', world.dir, '--config', world.configPath], { env: world.env });
    expect(onFolder.code).toBe(64);
    expect(onFolder.stderr).toMatch(/^compliance-sync: --out .* is a folder; the report is one file\nTry: /);

    const status = runCli(['status', '--config', world.configPath], { env: world.env });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/daemon\s+not running, so no cycle is scheduled \(start it: compliance-sync run/);
    expect(status.stdout).toMatch(/tweets\s+no daemon running; last started never; last success never/);
    expect(status.stdout).not.toMatch(/next run -/);
  });

  it('the demo config explains its emulator port and token, and the token file is 0600', () => {
    const dir = tempDir();
    const demo = runCli(['demo', '--dir', path.join(dir, 'demo'), '--tweets', '2000', '--users', '200'], { cwd: dir });
    expect(demo.code, demo.stderr).toBe(0);
    const config = JSON.parse(readFileSync(path.join(dir, 'demo', 'config.json'), 'utf8')) as { $comment: string; api: { baseUrl: string; bearerTokenFile: string } };
    const port = new URL(config.api.baseUrl).port;
    expect(config.$comment).toContain(`on a free port (${port}); it stopped when the demo ended`);
    expect(config.$comment).toContain('x-bearer-token holds the random token the demo gave that emulator (not an X token)');
    expect(config.$comment).toContain(`compliance-sync emulator --port ${port} --token "$(cat demo/x-bearer-token)"`);
    expect(config.api.bearerTokenFile).toBe('x-bearer-token');
    expect(modeOf(path.join(dir, 'demo', 'x-bearer-token'))).toBe(0o600);
    expect(runCli(['check-config', '--config', path.join(dir, 'demo', 'config.json')]).code).toBe(0);
  });
});

describe('usage errors', () => {
  it("commander's own complaints come as one line and a Try: naming the command's help (64)", () => {
    // An unknown command and an unknown option: the usage-error test in foundation.test.ts checks them the same way.
    for (const [args, message, help] of [
      [['apply', '--type', 'tweets'], "missing required argument 'file'", 'compliance-sync apply --help'],
      [['export', '--type', 'posts', '--out', 'x'], "option '--type <type>' argument 'posts' is invalid. Allowed choices are tweets, users.", 'compliance-sync export --help'],
      [['export', '--type', 'tweets', '--out', 'x', '--shard-size', '0'], "option '--shard-size <n>' argument '0' is invalid. must be a positive integer", 'compliance-sync export --help'],
    ] as const) {
      const result = runCli([...args]);
      expect(result.code, args.join(' ')).toBe(64);
      expect(result.stderr).toBe(`compliance-sync: ${message}\nTry: ${help}\n`);
    }
  });
});
