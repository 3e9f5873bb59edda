import { afterEach, describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { Daemon } from '../../src/scheduler/daemon.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const worlds: World[] = [];
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close();
});

describe("the daemon's STATUS= line", () => {
  it('says which cycle, shard and job each type is at, then how the cycles ended and when the next run is', async () => {
    const w = await makeWorld(tempDir(), { tweets: 700, users: 70, config: { schedule: { cron: '0 3 * * *' }, jobs: { shardSize: 400, pollIntervalSeconds: 0.1 } } });
    worlds.push(w);
    const runtime = openRuntime(w.config, quietLogger(), w.env);
    const statuses: string[] = [];
    const daemon = new Daemon({ config: w.config, runtime, logger: quietLogger(), onStatus: (status) => statuses.push(status), env: w.env });
    try {
      daemon.start();
      let endings = 0;
      const ended = new Promise<void>((resolve) => runtime.events.on('cycle:ended', () => ++endings === 2 && resolve()));
      daemon.trigger();
      await ended;
      // The status after the last cycle ends is published once its promise settles.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      await daemon.stop(5000);
      runtime.close();
    }
    expect(statuses[0]).toMatch(/^idle; next run \d{4}-\d\d-\d\dT03:00:00\.000Z$/);
    expect(statuses).toContainEqual(expect.stringMatching(/^tweets cycle #\d+ started: 700 IDs in 2 shards/));
    expect(statuses).toContainEqual(expect.stringMatching(/tweets cycle #\d+: shard 2\/2 uploaded/));
    expect(statuses).toContainEqual(expect.stringMatching(/users cycle #\d+: shard 1 job \d+ complete/));
    expect(statuses).toContainEqual(expect.stringMatching(/^tweets cycle #\d+: shard \d\/2 \w+; users cycle #\d+: /));
    expect(statuses.at(-1)).toMatch(/^idle; last: (tweets closed \S+Z, users closed \S+Z|users closed \S+Z, tweets closed \S+Z); next run \S+$/);
  });
});
