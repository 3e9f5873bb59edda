import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { clearStaleMarks } from '../../src/store/marks.js';
import { createStore } from '../../src/store/migrate.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();
const BEFORE = '2026-01-01T00:00:00.000Z';
const CYCLE_START = '2026-02-01T00:00:00.000Z';

function setup() {
  const dir = tempDir();
  const db = createStore(path.join(dir, 'store.db'));
  const config = parseConfig({ store: { path: 'store.db' } }, path.join(dir, 'config.json'), {});
  const user = db.prepare('INSERT INTO users (id, compliance_state, compliance_reason, compliance_at) VALUES (?, ?, ?, ?)');
  const tweet = db.prepare('INSERT INTO tweets (id, author_id, compliance_state, compliance_reason, compliance_at) VALUES (?, ?, ?, ?, ?)');
  return { db, config, user, tweet };
}

const state = (db: ReturnType<typeof setup>['db'], id: number) =>
  db.prepare('SELECT compliance_state AS state, compliance_reason AS reason FROM tweets WHERE id = ?').get(id);

describe('clearing marks at the close of a cycle', () => {
  it('clears own marks not reported again, keeps re-confirmed ones, edited ones and ones outside the ranges', async () => {
    const { db, config, tweet } = setup();
    tweet.run(10, null, 'protected', 'protected', BEFORE); // stale
    tweet.run(11, null, 'suspended', 'suspended', '2026-02-01T00:00:05.000Z'); // re-confirmed in this cycle
    tweet.run(12, null, 'edited', 'tweet_edited', BEFORE); // a refetch hint
    tweet.run(500, null, 'protected', 'protected', BEFORE); // not covered
    tweet.run(13, 7, 'protected', 'author_protected', BEFORE); // the users cycle's business
    expect(await clearStaleMarks(db, config, 'tweets', [{ firstId: '1', lastId: '100' }], CYCLE_START)).toBe(1);
    expect(state(db, 10)).toEqual({ state: null, reason: null });
    expect(state(db, 11)).toEqual({ state: 'suspended', reason: 'suspended' });
    expect(state(db, 12)).toEqual({ state: 'edited', reason: 'tweet_edited' });
    expect(state(db, 500)).toEqual({ state: 'protected', reason: 'protected' });
    expect(state(db, 13)).toEqual({ state: 'protected', reason: 'author_protected' });
    db.close();
  });

  it("hands a lapsed own mark over to the author's mark when the author is still marked", async () => {
    const { db, config, user, tweet } = setup();
    user.run(1, 'suspended', 'suspended', BEFORE);
    user.run(2, null, null, null);
    tweet.run(10, 1, 'protected', 'protected', BEFORE);
    tweet.run(11, 2, 'protected', 'protected', BEFORE);
    await clearStaleMarks(db, config, 'tweets', [{ firstId: '1', lastId: '100' }], CYCLE_START);
    expect(state(db, 10)).toEqual({ state: 'suspended', reason: 'author_suspended' });
    expect(state(db, 11)).toEqual({ state: null, reason: null });
    db.close();
  });

  it('the users cycle clears the cascaded marks of the users it covered, not of authors it never submitted', async () => {
    const { db, config, user, tweet } = setup();
    user.run(1, null, null, null); // was protected, not reported again (its own mark already cleared)
    tweet.run(10, 1, 'protected', 'author_protected', BEFORE);
    tweet.run(11, 3, 'protected', 'author_protected', BEFORE); // author 3 has no users row: never submitted
    await clearStaleMarks(db, config, 'users', [{ firstId: '1', lastId: '100' }], CYCLE_START);
    expect(state(db, 10)).toEqual({ state: null, reason: null });
    expect(state(db, 11)).toEqual({ state: 'protected', reason: 'author_protected' });
    db.close();
  });
});
