import { afterEach, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../../src/pipeline/runtime.js';
import { Daemon } from '../../src/scheduler/daemon.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const open: { world: World; runtime: Runtime; daemon: Daemon }[] = [];
afterEach(async () => {
  for (const { world, runtime, daemon } of open.splice(0)) {
    await daemon.stop(5000);
    runtime.close();
    await world.close();
  }
});

async function daemonFor(options: Parameters<typeof makeWorld>[1]) {
  const world = await makeWorld(tempDir(), options);
  const runtime = openRuntime(world.config, quietLogger(), world.env);
  const daemon = new Daemon({ config: world.config, runtime, logger: quietLogger(), env: world.env });
  open.push({ world, runtime, daemon });
  return { world, runtime, daemon };
}

describe('daemon bookkeeping', () => {
  it('records no success for a cycle whose every shard failed, and one for a cycle that applied every shard', async () => {
    const failing = await daemonFor({
      tweets: 300,
      users: 10,
      emulator: { faults: { jobFail: { rate: 1 } } },
      config: { schedule: { types: ['tweets'] }, jobs: { shardSize: 1000, pollIntervalSeconds: 0.1, maxAttempts: 1 } },
    });
    const closed = new Promise((resolve) => failing.runtime.events.once('cycle:closed', resolve));
    failing.daemon.trigger();
    await closed;
    await failing.daemon.stop(5000);
    expect(failing.runtime.ledger.recentCycles(1)[0]!.state).toBe('closed');
    expect(failing.runtime.ledger.scheduleState('tweets').lastSuccessAt).toBeNull();

    const healthy = await daemonFor({ tweets: 300, users: 10, config: { schedule: { types: ['tweets'] }, jobs: { shardSize: 1000, pollIntervalSeconds: 0.1 } } });
    const done = new Promise((resolve) => healthy.runtime.events.once('cycle:closed', resolve));
    healthy.daemon.trigger();
    await done;
    await healthy.daemon.stop(5000);
    expect(healthy.runtime.ledger.scheduleState('tweets').lastSuccessAt).not.toBeNull();
  });
});
