import { spawn, spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, formatLogLine } from '../../src/log.js';
import { CLI, useTempDir } from '../helpers/tmp.js';
import { makeWorld, spawnCli } from '../helpers/world.js';

const tempDir = useTempDir();
const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs the real CLI on a pseudo-terminal (util-linux `script`) of `columns` columns; returns what the terminal got. */
function onTerminal(args: string[], env: NodeJS.ProcessEnv, columns: number): Promise<{ code: number | null; screen: string }> {
  const command = `stty cols ${columns} rows 40; exec '${process.execPath}' '${CLI}' ${args.map((a) => `'${a}'`).join(' ')}`;
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    child.on('close', (code) => resolve({ code, screen }));
  });
}

/** Terminal output without colours, cursor movements and line ends: what was written, in order, as one string. */
function plain(screen: string): string {
  // eslint-disable-next-line no-control-regex -- matching the ESC of ANSI sequences is the point
  return screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\r\n]/g, '');
}

describe('on a terminal', () => {
  it.skipIf(!hasScript)('warnings are human lines, whole however narrow the screen, above both types\' progress bars', async () => {
    // The first job fails: the shard runs again, with a warning during the live progress display.
    const world = await makeWorld(tempDir(), { tweets: 3000, users: 300, emulator: { faults: { jobFail: 1 } } });
    try {
      const { code, screen } = await onTerminal(['reconcile', '--now', '--config', world.configPath], world.env, 60);
      expect(code).toBe(0);
      expect(screen).not.toContain('{"level"');
      const text = plain(screen);
      // Level, message and the fields that say where, in one piece although far longer than 60 columns.
      expect(text).toMatch(/\d\d:\d\d:\d\d WARN {2}job ended without results; the shard runs again {2}type=(tweets|users) cycle=\d+ shard=1 job=\d+ status=failed err=/);
      // Both progress bars were drawn.
      expect(text).toMatch(/tweets \[[█░]+\] shard/);
      expect(text).toMatch(/users {2}\[[█░]+\] shard/);
      // The summary follows.
      expect(text).toMatch(/shards applied/);
    } finally {
      await world.close();
    }
  });
});

describe('off a terminal', () => {
  it('logs are JSON lines with one pid key, even when a line names the pid itself', async () => {
    const world = await makeWorld(tempDir(), { tweets: 500, users: 50 });
    try {
      const run = spawnCli(['reconcile', '--now', '--config', world.configPath], world.env);
      expect((await run.exit).code).toBe(0);
      const lines = run.stderr().trim().split('\n');
      expect(lines.length).toBeGreaterThan(5);
      for (const line of lines) {
        expect(() => JSON.parse(line), line).not.toThrow();
        expect(line.match(/"pid":/g), line).toHaveLength(1);
      }
    } finally {
      await world.close();
    }

    let written = '';
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((written += chunk.toString()), done()) });
    createLogger('info', sink).info({ pid: process.pid, store: '/x' }, 'daemon started');
    await new Promise((resolve) => setImmediate(resolve));
    expect(written.match(/"pid":/g)).toHaveLength(1);
    expect(JSON.parse(written)).toMatchObject({ pid: process.pid, store: '/x', msg: 'daemon started' });
  });

  it('formats a log line for people: time, level, message, fields (strings bare when they can be)', () => {
    const line = JSON.stringify({ level: 'warn', time: '2026-12-02T03:04:05.678Z', pid: 1, name: 'compliance-sync', type: 'tweets', shard: 2, err: 'HTTP 503 Service Unavailable', msg: 'temporary API failure; retrying the step' });
    expect(formatLogLine(line)).toBe('03:04:05 WARN  temporary API failure; retrying the step  type=tweets shard=2 err="HTTP 503 Service Unavailable"');
  });
});
