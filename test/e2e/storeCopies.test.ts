import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { useTempDir } from '../helpers/tmp.js';
import { makeWorld, spawnCli, waitForOutput, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const worlds: World[] = [];
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close();
});

/** The store's identity, and per job of its ledger: the job's id and how many IDs its shard exported. */
function ledgerOf(storePath: string) {
  const db = openStore(storePath, { readonly: true });
  try {
    const jobs = db
      .prepare('SELECT j.id, j.type, s.id_count FROM cs_jobs j JOIN cs_shards s ON s.id = j.shard_id')
      .all()
      .map((row) => {
        const r = row as { id: string; type: string; id_count: bigint };
        return { id: r.id, type: r.type, ids: Number(r.id_count) };
      });
    const storeId = db.prepare('SELECT store_id FROM cs_store').pluck().get() as string;
    return { jobs, storeId };
  } finally {
    db.close();
  }
}

describe('two copies of one store against one API', () => {
  it('each checks all its own rows with its own jobs: no adoption across copies, and the wait for the slot is logged', async () => {
    // The emulator's clock (the only mock) stands still while `heldAt` is set: a job uploaded meanwhile stays in
    // progress, so X's one slot per type stays taken until a copy has been refused it, whatever the copies' start-up
    // skew on a loaded machine. Released, it jumps to the real now (never back) and the held jobs complete.
    let heldAt: number | null = null;
    const original = await makeWorld(tempDir(), {
      tweets: 1500,
      users: 120,
      emulator: { clock: () => heldAt ?? Date.now() },
      config: { jobs: { shardSize: 600, pollIntervalSeconds: 0.1 } },
    });
    worlds.push(original);
    // The store has run before: its identity is bound to its file.
    expect((await spawnCli(['reconcile', '--now', '--type', 'users', '--config', original.configPath], original.env).exit).code).toBe(0);
    const before = new Set(ledgerOf(original.storePath).jobs.map((job) => job.id));
    // A staging copy: same file, same store id, same ledger; then it drifts (rows deleted), so its shards differ.
    const copyDir = mkdtempSync(path.join(original.dir, 'copy-'));
    const copyStore = path.join(copyDir, 'store.db');
    copyFileSync(original.storePath, copyStore);
    writeFileSync(path.join(copyDir, 'config.json'), readFileSync(original.configPath));
    const db = openStore(copyStore);
    db.prepare('DELETE FROM tweets WHERE rowid % 3 = 0').run();
    db.close();

    // Both copies start while the clock is held; it moves again once one of them logged the wait for a slot the other's
    // job holds (each runs both types side by side, so the second to ask for a type's slot is refused it).
    const slotWait = 'another job of this type is active for this app';
    heldAt = Date.now();
    const runs = [original.configPath, path.join(copyDir, 'config.json')].map((config) =>
      spawnCli(['reconcile', '--now', '--json', '--config', config], original.env),
    );
    await Promise.any(runs.map((run) => waitForOutput(run, (text) => text.includes(slotWait)))).finally(() => (heldAt = null));
    const results = await Promise.all(runs.map(async (run) => ({ ...(await run.exit), stdout: run.stdout(), stderr: run.stderr() })));
    for (const result of results) {
      expect(result.code, result.stderr.slice(-2000)).toBe(0);
      expect(result.stderr).not.toContain('"adopted":true');
      expect(result.stderr).toContain('"adopted":false');
    }
    // The copy knew it was one and said so; the slot taken by the other copy's job was waited for, visibly.
    expect(results[1]!.stderr).toContain('this store is a copy');
    expect(results[0]!.stderr).not.toContain('this store is a copy');
    expect(results.some((result) => result.stderr.includes(slotWait)), results.map((r) => r.stderr).join('\n').slice(-6000)).toBe(true);

    // The jobs of this run (the copy inherited the ledger's history, jobs of the first run included).
    const newJobs = (ledger: ReturnType<typeof ledgerOf>) => ({ ...ledger, jobs: ledger.jobs.filter((job) => !before.has(job.id)) });
    const a = newJobs(ledgerOf(original.storePath));
    const b = newJobs(ledgerOf(copyStore));
    expect(a.storeId).not.toBe(b.storeId);
    // Disjoint jobs, and each job of a ledger carried exactly that ledger's shard: every stored row was uploaded.
    expect(a.jobs.map((job) => job.id).filter((id) => b.jobs.some((other) => other.id === id))).toEqual([]);
    const uploaded = new Map(original.emulator.jobs().map((job) => [job.id, job.uploadedIds]));
    for (const ledger of [a, b]) for (const job of ledger.jobs) expect(uploaded.get(job.id)).toBe(job.ids);
    expect(original.emulator.stats().jobsCreated.tweets + original.emulator.stats().jobsCreated.users).toBe(before.size + a.jobs.length + b.jobs.length);
  });
});
