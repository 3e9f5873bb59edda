import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { applyResultsFile } from '../../src/pipeline/apply/applyFile.js';
import { createStore } from '../../src/store/migrate.js';
import { useTempDir } from '../helpers/tmp.js';
import { quietLogger } from '../helpers/world.js';

const tempDir = useTempDir();

function store(dir: string) {
  const db = createStore(path.join(dir, 'store.db'));
  // Ten users; user 1 wrote 90 of the 100 tweets.
  for (let u = 1; u <= 10; u++) db.prepare('INSERT INTO users (id) VALUES (?)').run(u);
  for (let t = 1; t <= 100; t++) db.prepare('INSERT INTO tweets (id, author_id) VALUES (?, ?)').run(1000 + t, t <= 90 ? 1 : 2);
  const config = parseConfig({ store: { path: 'store.db' } }, path.join(dir, 'config.json'), {});
  return { db, config };
}

describe('the safety gate and cascades', () => {
  it('holds a users file whose deletions would take most tweets with them, and applies it when confirmed', async () => {
    const dir = tempDir();
    const { db, config } = store(dir);
    const file = path.join(dir, 'users.ndjson');
    writeFileSync(file, '{"id":"1","action":"delete","created_at":"2019-03-02T03:37:59+00:00","reason":"deactivated"}\n');
    const count = () => Number(db.prepare('SELECT count(*) FROM tweets').pluck().get());

    // One user of ten is a tenth of the users, but 90 of the 100 tweets.
    const held = await applyResultsFile({ db, config, type: 'users', file, logger: quietLogger() });
    expect(held.state).toBe('held');
    expect(held.wouldDelete).toBe(91);
    expect(count()).toBe(100);

    const dry = await applyResultsFile({ db, config, type: 'users', file, logger: quietLogger(), dryRun: true });
    expect(dry).toMatchObject({ state: 'held', wouldDelete: 91 });

    const confirmed = await applyResultsFile({ db, config, type: 'users', file, logger: quietLogger(), runId: held.runId!, confirmDeletions: true });
    expect(confirmed).toMatchObject({ state: 'done', linesRead: 1, wouldDelete: 91 });
    expect(count()).toBe(10);
    db.close();
  });

  it('lets a users file through when the tweets it takes are a plausible share', async () => {
    const dir = tempDir();
    const { db, config } = store(dir);
    const file = path.join(dir, 'users.ndjson');
    writeFileSync(file, '{"id":"2","action":"delete","created_at":"2019-03-02T03:37:59+00:00","reason":"deleted"}\n');
    const done = await applyResultsFile({ db, config, type: 'users', file, logger: quietLogger() });
    expect(done).toMatchObject({ state: 'done', wouldDelete: 11 });
    expect(Number(db.prepare('SELECT count(*) FROM tweets').pluck().get())).toBe(90);
    db.close();
  });
});
