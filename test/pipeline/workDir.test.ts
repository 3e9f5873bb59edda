import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCycle } from '../../src/pipeline/cycle.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import type { ShardState } from '../../src/store/ledger.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, useOpenWorlds } from '../helpers/world.js';

const tempDir = useTempDir();
const open = useOpenWorlds();

describe('an emptied work directory', () => {
  it.each<ShardState>(['job_created', 'uploaded', 'complete', 'downloaded'])(
    'cleared when a shard is %s: the missing files are made again and the cycle applies every shard',
    async (when) => {
      const world = await makeWorld(tempDir(), { tweets: 900, users: 10, config: { jobs: { shardSize: 400, pollIntervalSeconds: 0.1 } } });
      const runtime = openRuntime(world.config, quietLogger(), world.env);
      open.push({ world, runtime });
      // Once per shard: a cache cleaner that ran at that moment, not one that runs for ever.
      const wipedShards = new Set<number>();
      const wipe = (event: { seq: number }) => {
        if (wipedShards.has(event.seq)) return;
        wipedShards.add(event.seq);
        rmSync(world.config.paths.work, { recursive: true, force: true });
      };
      if (when === 'job_created') runtime.events.on('job:created', wipe);
      else runtime.events.on('shard:state', (event) => event.state === when && wipe(event));
      const summary = await runCycle(runtime.context(new AbortController().signal), 'tweets', { trigger: 'manual' });
      expect(wipedShards.size).toBe(3);
      expect(summary).toMatchObject({ state: 'closed', shards: { total: 3, applied: 3, failed: 0 }, idsChecked: 900 });
    },
  );
});
