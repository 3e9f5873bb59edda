import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'vitest';
import { makeWorld, type Spawned, type World } from './world.js';

/**
 * What one test opens: temp directories, worlds, HTTP receivers and spawned daemons, closed when that test ends.
 * useTempDir, useOpenWorlds and useDaemonWorlds close everything after each test, which would pull it from under a
 * test still running beside it; tests that run side by side (it.concurrent) take this fixture instead.
 */
export interface Scope {
  tempDir(): string;
  world(options?: Parameters<typeof makeWorld>[1]): Promise<World>;
  /** Listens on a free loopback port; returns the port. */
  listen(server: Server): Promise<number>;
  /** A spawned process (a daemon) that is SIGKILLed at the test's end if it still runs; returns it. */
  process(spawned: Spawned): Spawned;
}

/** `it` with a `scope` fixture: `itScoped.concurrent('…', async ({ scope }) => { … })`. */
export const itScoped = it.extend<{ scope: Scope }>({
  // eslint-disable-next-line no-empty-pattern -- vitest reads a fixture's dependencies from this pattern; this one has none
  scope: async ({}, use) => {
    const dirs: string[] = [];
    const worlds: World[] = [];
    const servers: Server[] = [];
    const processes: Spawned[] = [];
    const tempDir = () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cs-test-'));
      dirs.push(dir);
      return dir;
    };
    try {
      await use({
        tempDir,
        world: async (options = {}) => {
          const w = await makeWorld(tempDir(), options);
          worlds.push(w);
          return w;
        },
        listen: async (server) => {
          servers.push(server);
          await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
          return (server.address() as AddressInfo).port;
        },
        process: (spawned) => {
          processes.push(spawned);
          return spawned;
        },
      });
    } finally {
      for (const { child, exit } of processes) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exit;
      }
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      for (const world of worlds) await world.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  },
});
