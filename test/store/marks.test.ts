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

type Placement = { tweets: 'ledger' | 'columns'; users: 'ledger' | 'columns' };
const NO_COLUMNS = { complianceState: null, complianceReason: null, complianceAt: null };

/** A store whose marks are kept in the tables' columns or in the ledger's cs_marks (the mapping's columns null). */
function placedStore(placement: Placement) {
  const dir = tempDir();
  const db = createStore(path.join(dir, 'store.db'));
  const tables = { tweets: placement.tweets === 'ledger' ? NO_COLUMNS : {}, users: placement.users === 'ledger' ? NO_COLUMNS : {} };
  const config = parseConfig({ store: { path: 'store.db', tables } }, path.join(dir, 'config.json'), {});
  const place = (type: 'tweets' | 'users', id: number, markState: string | null, reason: string | null, at: string | null) => {
    if (placement[type] === 'columns') {
      db.prepare(`UPDATE ${type} SET compliance_state = ?, compliance_reason = ?, compliance_at = ? WHERE id = ?`).run(markState, reason, at, id);
    } else if (markState !== null) {
      db.prepare('INSERT INTO cs_marks (type, id, state, reason, at) VALUES (?, ?, ?, ?, ?)').run(type, id, markState, reason, at);
    }
  };
  const user = (id: number, markState: string | null, reason: string | null, at: string | null) => {
    db.prepare('INSERT INTO users (id) VALUES (?)').run(id);
    place('users', id, markState, reason, at);
  };
  const tweet = (id: number, author: number | null, markState: string | null, reason: string | null, at: string | null) => {
    db.prepare('INSERT INTO tweets (id, author_id) VALUES (?, ?)').run(id, author);
    place('tweets', id, markState, reason, at);
  };
  const mark = (id: number) =>
    placement.tweets === 'columns'
      ? (db.prepare('SELECT compliance_state AS state, compliance_reason AS reason FROM tweets WHERE id = ?').get(id) as object)
      : ((db.prepare("SELECT state, reason FROM cs_marks WHERE type = 'tweets' AND id = ?").get(id) as object | undefined) ?? { state: null, reason: null });
  const markedTweets = () =>
    placement.tweets === 'columns'
      ? Number(db.prepare('SELECT count(*) FROM tweets WHERE compliance_state IS NOT NULL').pluck().get())
      : Number(db.prepare("SELECT count(*) FROM cs_marks WHERE type = 'tweets'").pluck().get());
  const snapshot = () => ({
    tweets: db.prepare('SELECT * FROM tweets ORDER BY id').all(),
    users: db.prepare('SELECT * FROM users ORDER BY id').all(),
    ledger: db.prepare('SELECT * FROM cs_marks ORDER BY type, id').all(),
  });
  return { db, config, user, tweet, mark, markedTweets, snapshot };
}

/** The same close-out with marks in the ledger's cs_marks, for tweets, users or both. */
describe.each([
  { tweets: 'ledger', users: 'ledger' },
  { tweets: 'ledger', users: 'columns' },
  { tweets: 'columns', users: 'ledger' },
] as const)('clearing marks with tweets in $tweets and users in $users', (placement) => {
  const setupPlaced = () => placedStore(placement);

  it('clears stale own marks, keeps re-confirmed, edited, uncovered and cascaded ones', async () => {
    const { db, config, tweet, mark } = setupPlaced();
    tweet(10, null, 'protected', 'protected', BEFORE);
    tweet(11, null, 'suspended', 'suspended', '2026-02-01T00:00:05.000Z');
    tweet(12, null, 'edited', 'tweet_edited', BEFORE);
    tweet(500, null, 'protected', 'protected', BEFORE);
    tweet(13, 7, 'protected', 'author_protected', BEFORE);
    expect(await clearStaleMarks(db, config, 'tweets', [{ firstId: '1', lastId: '100' }], CYCLE_START)).toBe(1);
    expect(mark(10)).toEqual({ state: null, reason: null });
    expect(mark(11)).toEqual({ state: 'suspended', reason: 'suspended' });
    expect(mark(12)).toEqual({ state: 'edited', reason: 'tweet_edited' });
    expect(mark(500)).toEqual({ state: 'protected', reason: 'protected' });
    expect(mark(13)).toEqual({ state: 'protected', reason: 'author_protected' });
    db.close();
  });

  it("hands a lapsed own mark over to the author's mark while the author is marked", async () => {
    const { db, config, user, tweet, mark } = setupPlaced();
    user(1, 'suspended', 'suspended', BEFORE);
    user(2, null, null, null);
    tweet(10, 1, 'protected', 'protected', BEFORE);
    tweet(11, 2, 'protected', 'protected', BEFORE);
    await clearStaleMarks(db, config, 'tweets', [{ firstId: '1', lastId: '100' }], CYCLE_START);
    expect(mark(10)).toEqual({ state: 'suspended', reason: 'author_suspended' });
    expect(mark(11)).toEqual({ state: null, reason: null });
    db.close();
  });

  it('the users cycle clears cascaded marks of the users it covered only', async () => {
    const { db, config, user, tweet, mark } = setupPlaced();
    user(1, null, null, null);
    user(2, 'protected', 'protected', BEFORE);
    tweet(10, 1, 'protected', 'author_protected', BEFORE);
    tweet(11, 3, 'protected', 'author_protected', BEFORE);
    expect(await clearStaleMarks(db, config, 'users', [{ firstId: '1', lastId: '100' }], CYCLE_START)).toBe(2); // user 2's own, tweet 10's
    expect(mark(10)).toEqual({ state: null, reason: null });
    expect(mark(11)).toEqual({ state: 'protected', reason: 'author_protected' });
    db.close();
  });
});

describe('clearing marks in pieces (reconcile.maxLockMs)', () => {
  it('clears a range in several transactions, each a contiguous piece of IDs, with the same result as one piece', async () => {
    const runs = [] as { pieces: { first: string; last: string }[]; cleared: number; rows: unknown[] }[];
    for (const pieceRows of [10, 1_000_000]) {
      const { db, config, tweet } = setup();
      for (let id = 1; id <= 95; id++) tweet.run(id, null, 'protected', 'protected', id % 10 === 0 ? CYCLE_START : BEFORE);
      tweet.run(200, null, 'protected', 'protected', BEFORE); // outside the range
      const pieces: { first: string; last: string }[] = [];
      // A clock that never advances: every piece is fast, so pieces grow (10, 20, 40, …).
      const cleared = await clearStaleMarks(db, config, 'tweets', [{ firstId: '1', lastId: '150' }], CYCLE_START, {
        pieceRows,
        clock: () => 0,
        onCommit: (piece) => pieces.push(piece),
      });
      runs.push({ pieces, cleared, rows: db.prepare('SELECT id, compliance_state FROM tweets ORDER BY id').all() });
      db.close();
    }
    const [cut, whole] = runs;
    expect(whole!.pieces).toEqual([{ first: '1', last: '150' }]);
    expect(cut!.pieces).toEqual([
      { first: '1', last: '10' },
      { first: '10', last: '30' },
      { first: '30', last: '70' },
      { first: '70', last: '150' },
    ]);
    expect(cut!.cleared).toBe(86);
    expect(cut!.cleared).toBe(whole!.cleared);
    expect(cut!.rows).toEqual(whole!.rows);
  });

  it('makes pieces smaller when one takes more than half the bound', async () => {
    const { db, config, tweet } = setup();
    for (let id = 1; id <= 20; id++) tweet.run(id, null, 'protected', 'protected', BEFORE);
    const pieces: string[] = [];
    let t = 0;
    // Each reading advances 150 ms: every piece "took" 150 ms of a 200 ms bound, so the next one is half as big.
    await clearStaleMarks(db, config, 'tweets', [{ firstId: '1', lastId: '20' }], CYCLE_START, {
      pieceRows: 8,
      clock: () => (t += 150),
      onCommit: (piece) => pieces.push(`${piece.first}-${piece.last}`),
    });
    expect(pieces.slice(0, 4)).toEqual(['1-8', '8-12', '12-14', '14-15']);
    expect(pieces.slice(-2)).toEqual(['19-20', '20-20']); // the last piece runs to the range's end
    expect(db.prepare('SELECT count(*) FROM tweets WHERE compliance_state IS NOT NULL').pluck().get()).toBe(0n);
    db.close();
  });
});

describe.each([
  { tweets: 'columns', users: 'columns' },
  { tweets: 'ledger', users: 'ledger' },
  { tweets: 'ledger', users: 'columns' },
  { tweets: 'columns', users: 'ledger' },
] as const)("clearing a prolific author's cascaded marks in pieces (tweets in $tweets, users in $users)", (placement) => {
  const PROLIFIC = 3000;
  function prolificStore() {
    const store = placedStore(placement);
    const { db, user, tweet } = store;
    db.transaction(() => {
      user(1, null, null, null); // its own mark already cleared, its tweets' cascaded marks stale
      user(2, 'protected', 'protected', BEFORE); // stale, and so are the cascaded marks of its 3,000 tweets
      user(3, 'suspended', 'suspended', CYCLE_START); // reported again: its tweets were marked again this cycle
      for (let i = 0; i < PROLIFIC; i++) {
        // Every 100th tweet has a mark of its own: the tweets cycle's business.
        if (i % 100 === 0) tweet(10_000 + i, 2, 'suspended', 'suspended', BEFORE);
        else tweet(10_000 + i, 2, 'protected', 'author_protected', BEFORE);
      }
      for (let i = 0; i < 5; i++) tweet(20_000 + i, 1, 'protected', 'author_protected', BEFORE);
      for (let i = 0; i < 5; i++) tweet(30_000 + i, 3, 'suspended', 'author_suspended', CYCLE_START);
      tweet(40_000, 9, 'protected', 'author_protected', BEFORE); // author 9 has no users row: never submitted
    })();
    // A fake clock of 1 ms per tweet mark cleared so far (the open transaction's included): it stands for the time
    // the write lock is held while clearing them.
    const marked = store.markedTweets();
    return { ...store, clock: () => marked - store.markedTweets() };
  }
  const RANGE = [{ firstId: '1', lastId: '100' }];
  // User 2's own mark, the cascaded marks of user 2's tweets but its own-marked ones, and of user 1's five.
  const EXPECTED_CLEARED = 1 + (PROLIFIC - PROLIFIC / 100) + 5;

  it('takes several transactions, each under the bound, with the same end state and count as one', async () => {
    const whole = prolificStore();
    const wholeCommits: number[] = [];
    // A clock that never advances: nothing is cut, as one statement over the author's tweets did.
    const wholeCleared = await clearStaleMarks(whole.db, whole.config, 'users', RANGE, CYCLE_START, {
      clock: () => 0,
      onCommit: () => wholeCommits.push(whole.clock()),
    });
    expect(wholeCommits).toEqual([EXPECTED_CLEARED - 1]);
    expect(wholeCleared).toBe(EXPECTED_CLEARED);
    expect(whole.markedTweets()).toBe(PROLIFIC / 100 + 5 + 1);

    const cut = prolificStore();
    const commits: number[] = [];
    const cleared = await clearStaleMarks(cut.db, cut.config, 'users', RANGE, CYCLE_START, {
      maxLockMs: 200,
      clock: cut.clock,
      onCommit: () => commits.push(cut.clock()),
    });
    const heldPerCommit = commits.map((at, i) => at - (commits[i - 1] ?? 0));
    expect(commits.length).toBeGreaterThan(PROLIFIC / 200);
    for (const held of heldPerCommit) expect(held).toBeLessThanOrEqual(200);
    expect(cleared).toBe(EXPECTED_CLEARED);
    expect(cut.snapshot()).toEqual(whole.snapshot());
    whole.db.close();
    cut.db.close();
  });

  it('a crash between two transactions leaves less to clear, and the next attempt ends where one attempt would', async () => {
    const once = prolificStore();
    await clearStaleMarks(once.db, once.config, 'users', RANGE, CYCLE_START, { clock: () => 0 });

    const crashed = prolificStore();
    let commits = 0;
    const crash = new Error('crash after the third commit');
    await expect(
      clearStaleMarks(crashed.db, crashed.config, 'users', RANGE, CYCLE_START, {
        maxLockMs: 200,
        clock: crashed.clock,
        onCommit: () => {
          if (++commits === 3) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    const clearedBefore = crashed.clock();
    expect(clearedBefore).toBeGreaterThan(0);
    expect(clearedBefore).toBeLessThan(EXPECTED_CLEARED - 1);
    const again = await clearStaleMarks(crashed.db, crashed.config, 'users', RANGE, CYCLE_START, { maxLockMs: 200, clock: crashed.clock });
    // The user's own mark went in the first attempt: the second clears the tweets' cascaded marks that were left.
    expect(again).toBe(EXPECTED_CLEARED - 1 - clearedBefore);
    expect(crashed.snapshot()).toEqual(once.snapshot());
    once.db.close();
    crashed.db.close();
  });
});
