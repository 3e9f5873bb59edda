import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { resultFile } from '../../src/pipeline/context.js';
import { runCycle } from '../../src/pipeline/cycle.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { openStore } from '../../src/store/open.js';
import { cleanEnv } from '../helpers/cli.js';
import { useFileTempDir, useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, spawnCli, useOpenWorlds } from '../helpers/world.js';
import { insertTweets, makeStore, result } from './helpers.js';

const tempDir = useTempDir();
const worlds = useOpenWorlds();

const IDS = ['1500000000000000001', '1500000000000000002', '1500000000000000003'];
const GOOD = IDS.map((id) => JSON.stringify(result(id, 'deleted'))).join('\n') + '\n';

const UNUSABLE: [string, string | Buffer, RegExp][] = [
  ['a JSON array', `[${IDS.map((id) => JSON.stringify(result(id, 'deleted'))).join(',')}]\n`, /is a JSON array, not JSON lines/],
  ['pretty-printed JSON', JSON.stringify(result(IDS[0]!, 'deleted'), null, 2), /pretty-printed JSON/],
  ['gzip', gzipSync(GOOD), /is gzip-compressed: gunzip it first/],
  ['binary', Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x0a, 0x7b, 0x0a, 0xc3, 0x28, 0x0a]), /is binary, not text/],
  ['every line rejected', 'not json\n{"id":1500000000000000001,"action":"delete","reason":"deleted"}\n{"id":"x"}\n', /every line .* was rejected \(1 malformed_json, 2 invalid_id\)/],
];

const REJECTED = [
  '{"id":1500000000000000003,"action":"delete","reason":"deleted"}',
  '{ "reason" : "deleted", "id": 15000000000000000031, "action":"delete" }\r',
  '{"id":"1500000000000000002","action":"nuke","reason":"deleted"}',
  'half a line {"id":',
  '  [1500000000000000001, 2.50]  ',
];

/** Every results file this file hands to `apply`, by name. */
const FILES: [string, string | Buffer][] = [
  ...UNUSABLE.map(([name, content]): [string, string | Buffer] => [name, content]),
  ['empty', ''],
  ['blank lines', '\n\n'],
  ['kept rejects', [JSON.stringify(result(IDS[0]!, 'deleted')), ...REJECTED].join('\n') + '\n'],
];

interface Applied {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Rows left in the store after the run. */
  stored: number;
  /** The rejects file's content, or null when the run wrote none. */
  rejects: string | null;
}

/** `apply --confirm-deletions` of `content` on a store of its own holding IDS, as a user runs it. */
async function applyFile(dir: string, content: string | Buffer): Promise<Applied> {
  const { db } = makeStore(dir);
  insertTweets(db, IDS.map((id) => ({ id })));
  db.close();
  const file = path.join(dir, 'results.ndjson');
  writeFileSync(file, content);
  const run = spawnCli(['apply', '--type', 'tweets', file, '--confirm-deletions', '--config', path.join(dir, 'config.json')], cleanEnv());
  const { code } = await run.exit;
  const stored = openStore(path.join(dir, 'store.db'), { readonly: true });
  const count = Number(stored.prepare('SELECT count(*) FROM tweets').pluck().get());
  stored.close();
  const rejects = `${file}.rejects.ndjson`;
  return { code, stdout: run.stdout(), stderr: run.stderr(), stored: count, rejects: existsSync(rejects) ? readFileSync(rejects, 'utf8') : null };
}

// The runs are independent (a store each) and nearly all process start-up: they run side by side, once, before the
// tests; each test reads the outcome of its own file.
const fileTempDir = useFileTempDir();
const applied = new Map<string, Applied>();
beforeAll(async () => {
  await Promise.all(FILES.map(async ([name, content]) => applied.set(name, await applyFile(fileTempDir(), content))));
});

function outcome(name: string): Applied {
  const run = applied.get(name);
  if (!run) throw new Error(`no apply run for ${name}`);
  return run;
}

describe('a results file that cannot be used is a failure that says what the file is', () => {
  it.each(UNUSABLE)('%s: exit 1, nothing applied, no binary junk in a rejects file', (name, _content, message) => {
    const run = outcome(name);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/Try: /);
    expect(run.stored).toBe(IDS.length);
    // eslint-disable-next-line no-control-regex -- a NUL in the rejects file is the corruption under test
    if (run.rejects !== null) expect(run.rejects).not.toMatch(/\uFFFD|\u0000/);
  });

  it('an empty results file is legitimate: no ID needs action (exit 0)', () => {
    expect(outcome('empty').code).toBe(0);
    expect(outcome('blank lines').code).toBe(0);
  });

  it('a cycle fails the shard (not "applied") when X returns an unusable file', async () => {
    const world = await makeWorld(tempDir(), { tweets: 300, users: 10, config: { jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } });
    const runtime = openRuntime(world.config, quietLogger(), world.env);
    worlds.push({ world, runtime });
    runtime.events.on('shard:state', (event) => {
      if (event.state === 'downloaded') {
        const file = resultFile(world.config, event.cycleId, event.seq);
        writeFileSync(file, gzipSync(readFileSync(file)));
      }
    });
    const summary = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
    expect(summary.shards).toMatchObject({ total: 1, applied: 0, failed: 1 });
    expect(summary.failures[0]!.error).toMatch(/gzip-compressed/);
    expect(summary.idsChecked).toBe(0);
  });
});

describe('the rejects file keeps each rejected line byte for byte', () => {
  it('numeric IDs keep every digit; spacing, key order and CRLF are kept', () => {
    const run = outcome('kept rejects');
    expect(run.code).toBe(0);
    expect(run.rejects).not.toBeNull();
    const entries = (run.rejects ?? '')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { line: number; text: string });
    expect(entries.map((entry) => entry.line)).toEqual([2, 3, 4, 5, 6]);
    expect(entries.map((entry) => entry.text)).toEqual(REJECTED);
  });
});
