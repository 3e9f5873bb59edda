import { describe, expect, it } from 'vitest';
import { useInProcessDaemons } from '../helpers/daemon.js';

const daemonFor = useInProcessDaemons();

describe("the daemon's STATUS= line", () => {
  it('says which cycle, shard and job each type is at, then how the cycles ended and when the next run is', async () => {
    const d = await daemonFor({ tweets: 700, users: 70, config: { schedule: { cron: '0 3 * * *' }, jobs: { shardSize: 400, pollIntervalSeconds: 0.1 } } });
    d.daemon.start();
    d.daemon.trigger();
    await d.clock.until(() => d.runtime.ledger.recentCycles(2).filter((cycle) => cycle.state === 'closed').length === 2, 'both cycles to close');
    // The status after the last cycle ends is published once its promise settles.
    await d.clock.until(() => /^idle; last: .*, .*; next run/.test(d.statuses.at(-1) ?? ''), 'the idle status');
    const { statuses } = d;
    expect(statuses[0]).toMatch(/^idle; next run \d{4}-\d\d-\d\dT03:00:00\.000Z$/);
    expect(statuses).toContainEqual(expect.stringMatching(/^tweets cycle #\d+ started: 700 IDs in 2 shards/));
    expect(statuses).toContainEqual(expect.stringMatching(/tweets cycle #\d+: shard 2\/2 uploaded/));
    expect(statuses).toContainEqual(expect.stringMatching(/users cycle #\d+: shard 1 job \d+ complete/));
    expect(statuses).toContainEqual(expect.stringMatching(/^tweets cycle #\d+: shard \d\/2 \w+; users cycle #\d+: /));
    expect(statuses.at(-1)).toMatch(/^idle; last: (tweets closed \S+Z, users closed \S+Z|users closed \S+Z, tweets closed \S+Z); next run \S+$/);
  });
});
