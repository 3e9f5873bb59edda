import { Writable } from 'node:stream';
import { afterEach } from 'vitest';
import { createLogger, type Logger } from '../../src/log.js';
import { openRuntime, type Runtime } from '../../src/pipeline/runtime.js';
import { Daemon, type DaemonOptions } from '../../src/scheduler/daemon.js';
import { FakeClock } from './fakeClock.js';
import { useTempDir } from './tmp.js';
import { makeWorld, type World } from './world.js';

export interface LogLine {
  msg: string;
  [field: string]: unknown;
}

/** A logger whose lines the test can read back, parsed. */
export function capturedLogger(): { logger: Logger; lines: LogLine[]; messages: () => string[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines, messages: () => lines.map((line) => line.msg) };
}

export interface InProcessDaemon {
  clock: FakeClock;
  world: World;
  runtime: Runtime;
  daemon: Daemon;
  lines: LogLine[];
  statuses: string[];
  /** How many of the log lines so far carry this message. */
  count(msg: string): number;
}

/**
 * Daemons run in this process on a fake clock shared with their emulator: the schedule, backoffs and polls move
 * when the test moves the clock, while SQLite and the emulator's HTTP stay real. Each is stopped and its world
 * closed after the test.
 */
export function useInProcessDaemons(): (
  worldOptions: Parameters<typeof makeWorld>[1] & { start?: Date },
  daemonOptions?: Pick<DaemonOptions, 'backoff'>,
) => Promise<InProcessDaemon> {
  const tempDir = useTempDir();
  const open: { daemon: Daemon; runtime: Runtime; world: World }[] = [];
  afterEach(async () => {
    for (const { daemon, runtime, world } of open.splice(0)) {
      await daemon.stop(5000);
      runtime.close();
      await world.close();
    }
  });
  return async ({ start, ...worldOptions }, daemonOptions = {}) => {
    const clock = new FakeClock(start ?? Date.now());
    const world = await makeWorld(tempDir(), { ...worldOptions, emulator: { clock: () => clock.now().getTime(), ...worldOptions.emulator } });
    const { logger, lines } = capturedLogger();
    const runtime = openRuntime(world.config, logger, world.env, { clock });
    const statuses: string[] = [];
    const daemon = new Daemon({ config: world.config, runtime, logger, env: world.env, onStatus: (status) => statuses.push(status), ...daemonOptions });
    open.push({ daemon, runtime, world });
    return { clock, world, runtime, daemon, lines, statuses, count: (msg) => lines.filter((line) => line.msg === msg).length };
  };
}
