import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Id } from '../../src/types.js';
import { readAuditCounts, getApplyRun } from '../../src/store/applyRuns.js';
import { openStore } from '../../src/store/open.js';
import { useTempDir } from '../helpers/tmp.js';
import { apply, AS_OF, insertTweets, insertUsers, makeStore, result, rowsOf, writeResults } from './helpers.js';

const tempDir = useTempDir();

const RAW = JSON.stringify({
  id: '1500000000000000001',
  text: 'hello',
  public_metrics: { like_count: 3 },
  author_id: '1234567890123456789',
  geo: { place_id: 'abc', coordinates: { type: 'Point', coordinates: [2.3522219, 48.856614] } },
  coordinates: { type: 'Point', coordinates: [2.3522219, 48.856614] },
  place: { full_name: 'Paris' },
  lang: 'fr',
});

describe('applyResultsFile: what each result does to the store', () => {
  it('tweets: delete reasons delete, protected/suspended mark, edits mark edited, geo is scrubbed', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    const ids = Array.from({ length: 12 }, (_, i) => String(1500000000000000001n + BigInt(i)));
    insertTweets(db, ids.map((id) => ({ id, author_id: '7', geo_lat: 48.85, geo_lon: 2.35, place_id: 'abc', raw_json: RAW })));
    const file = writeResults(dir, 'r.ndjson', [
      result(ids[0]!, 'deleted'),
      result(ids[1]!, 'deactivated'),
      result(ids[2]!, 'bounced'),
      result(ids[3]!, 'some_future_reason'),
      result(ids[4]!, 'protected'),
      result(ids[5]!, 'suspended'),
      result(ids[6]!, 'scrub_geo'),
      result(ids[7]!, 'geo_scrubbed', 'scrub_geo'),
      result(ids[8]!, 'tweet_edited', 'rehydrate'),
      result('1999999999999999999', 'deleted'),
    ]);
    const summary = await apply(db, config, 'tweets', file);
    const rows = rowsOf(db, 'tweets');
    for (const id of ids.slice(0, 4)) expect(rows[id]).toBeUndefined();
    expect(rows[ids[4]!]).toMatchObject({ compliance_state: 'protected', compliance_reason: 'protected', compliance_at: AS_OF, text: `text of ${ids[4]}`, raw_json: RAW });
    expect(rows[ids[5]!]).toMatchObject({ compliance_state: 'suspended', compliance_reason: 'suspended', compliance_at: AS_OF });
    for (const id of [ids[6]!, ids[7]!]) {
      expect(rows[id]).toMatchObject({ geo_lat: null, geo_lon: null, place_id: null, compliance_state: null });
      const { geo, coordinates, place, ...rest } = JSON.parse(RAW) as Record<string, unknown>;
      expect([geo, coordinates, place].every(Boolean)).toBe(true);
      expect(JSON.parse(String(rows[id]!.raw_json))).toEqual(rest);
      // Numbers keep their exact text (a 19-digit string stays a string; floats are not re-rounded).
      expect(String(rows[id]!.raw_json)).toContain('"author_id":"1234567890123456789"');
    }
    expect(rows[ids[8]!]).toMatchObject({ compliance_state: 'edited', compliance_reason: 'tweet_edited', compliance_at: AS_OF });
    for (const id of ids.slice(9)) expect(rows[id]).toMatchObject({ compliance_state: null, geo_lat: 48.85, raw_json: RAW });
    expect(summary).toMatchObject({
      state: 'done',
      linesRead: 10,
      records: 10,
      applied: { delete: 4, mark: 3, scrub_geo: 2, ignore: 0 },
      notFound: 1,
      rejected: {},
      rejectsFile: null,
    });
    const audit = readAuditCounts(db, summary.runId!);
    expect(audit).toContainEqual({ reason: 'deleted', actionTaken: 'delete', count: 1 });
    expect(audit).toContainEqual({ reason: 'deleted', actionTaken: 'not_found', count: 1 });
    expect(audit).toContainEqual({ reason: 'tweet_edited', actionTaken: 'mark', count: 1 });
    expect(getApplyRun(db, summary.runId!)).toMatchObject({ state: 'done', checkpointLine: 10, asOf: AS_OF });
    db.close();
  });

  it('a scrub leaves invalid raw JSON and rows without geo alone, and keeps an existing mark', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, [
      { id: '11', raw_json: 'not json {', geo_lat: 1, geo_lon: 2 },
      { id: '12', raw_json: '{"a":1}', compliance_state: 'protected', compliance_reason: 'protected', compliance_at: 'x' },
    ]);
    await apply(db, config, 'tweets', writeResults(dir, 'r.ndjson', [result('11', 'scrub_geo'), result('12', 'geo_scrubbed', 'scrub_geo')]));
    const rows = rowsOf(db, 'tweets');
    expect(rows['11']).toMatchObject({ raw_json: 'not json {', geo_lat: null, geo_lon: null });
    expect(rows['12']).toMatchObject({ raw_json: '{"a":1}', compliance_state: 'protected', compliance_at: 'x' });
    db.close();
  });

  it('a delete of a marked row deletes it; the policy can override a reason (ignore, delete)', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir, { reconcile: { policy: { suspended: 'ignore', protected: 'delete' } } });
    insertTweets(db, [{ id: '1', compliance_state: 'protected', compliance_reason: 'protected' }, { id: '2' }, { id: '3' }]);
    const summary = await apply(db, config, 'tweets', writeResults(dir, 'r.ndjson', [result('1', 'deleted'), result('2', 'suspended'), result('3', 'protected')]));
    expect(Object.keys(rowsOf(db, 'tweets'))).toEqual(['2']);
    expect(rowsOf(db, 'tweets')['2']).toMatchObject({ compliance_state: null });
    expect(summary.applied).toEqual({ delete: 2, mark: 0, scrub_geo: 0, ignore: 1 });
    db.close();
  });

  it('users: deleted/deactivated delete the user and cascade to their tweets; marks and geo scrubs cascade too', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertUsers(db, ['101', '102', '103', '104', '105']);
    insertTweets(db, [
      { id: '1', author_id: '101' },
      { id: '2', author_id: '101' },
      { id: '3', author_id: '102' },
      { id: '4', author_id: '103' },
      { id: '5', author_id: '103', compliance_state: 'suspended', compliance_reason: 'suspended', compliance_at: 'own' },
      { id: '6', author_id: '104', geo_lat: 1, geo_lon: 2, place_id: 'p', raw_json: '{"geo":{"x":1},"text":"t"}' },
      { id: '7', author_id: '105' },
      { id: '8', author_id: '999' }, // an author whose user row is not stored: the cascade still applies
    ]);
    const file = writeResults(dir, 'users.ndjson', [
      result('101', 'deleted'),
      result('102', 'deactivated'),
      result('103', 'protected'),
      result('104', 'scrub_geo'),
      result('105', 'suspended'),
      result('999', 'deleted'),
    ]);
    const summary = await apply(db, config, 'users', file);
    const users = rowsOf(db, 'users');
    const tweets = rowsOf(db, 'tweets');
    expect(Object.keys(users).sort()).toEqual(['103', '104', '105']);
    expect(users['103']).toMatchObject({ compliance_state: 'protected', compliance_reason: 'protected', compliance_at: AS_OF });
    expect(users['105']).toMatchObject({ compliance_state: 'suspended' });
    expect(Object.keys(tweets).sort()).toEqual(['4', '5', '6', '7']);
    expect(tweets['4']).toMatchObject({ compliance_state: 'protected', compliance_reason: 'author_protected', compliance_at: AS_OF });
    expect(tweets['5']).toMatchObject({ compliance_state: 'suspended', compliance_reason: 'suspended', compliance_at: 'own' });
    expect(tweets['6']).toMatchObject({ geo_lat: null, geo_lon: null, place_id: null, raw_json: '{"text":"t"}' });
    expect(tweets['7']).toMatchObject({ compliance_state: 'suspended', compliance_reason: 'author_suspended' });
    expect(summary).toMatchObject({
      applied: { delete: 2, mark: 2, scrub_geo: 1, ignore: 0 },
      notFound: 1,
      cascaded: { deleted: 4, marked: 2, scrubbed: 1 },
    });
    expect(readAuditCounts(db, summary.runId!)).toContainEqual({ reason: 'deleted', actionTaken: 'cascade_delete', count: 3 });
    db.close();
  });

  it('users with reconcile.cascadeUsers off leave the tweets alone', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir, { reconcile: { cascadeUsers: false } });
    insertUsers(db, ['101', '103']);
    insertTweets(db, [{ id: '1', author_id: '101' }, { id: '2', author_id: '103' }]);
    const summary = await apply(db, config, 'users', writeResults(dir, 'u.ndjson', [result('101', 'deleted'), result('103', 'protected')]));
    expect(Object.keys(rowsOf(db, 'users'))).toEqual(['103']);
    expect(rowsOf(db, 'tweets')).toMatchObject({ '1': { compliance_state: null }, '2': { compliance_state: null } });
    expect(summary.cascaded).toEqual({ deleted: 0, marked: 0, scrubbed: 0 });
    db.close();
  });
});

describe('applyResultsFile: odd input', () => {
  it('blank, CRLF, duplicate, malformed and unknown lines: counted, rejected with their line numbers, never fatal', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, [{ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' }]);
    const file = writeResults(
      dir,
      'odd.ndjson',
      [
        result('1', 'suspended'), // 1
        '', // 2
        '   ', // 3
        result('1', 'suspended'), // 4: duplicate: changes nothing
        '{"id":"2","action":"delete"', // 5: malformed
        result('2', 'deleted'), // 6
        result('2', 'deleted'), // 7: duplicate delete: not found the second time
        result('3', 'bounced', 'explode'), // 8: unknown action
        '[1,2]', // 9
        '{"id":"","action":"delete","reason":"deleted"}', // 10
        '{"id":"12345678901234567890","action":"delete","reason":"deleted"}', // 11: 20 digits
        '{"id":"4","action":"delete"}', // 12: no reason
        '{"id":"not_a_valid_id","error":"invalid_id"}', // 13
        '{"id":"4","error":"invalid_id"}', // 14
        result('3', 'protected'), // 15
      ],
      '\r\n',
    );
    const summary = await apply(db, config, 'tweets', file, { config: { ...config, reconcile: { ...config.reconcile, batchSize: 3 } } });
    const rows = rowsOf(db, 'tweets');
    expect(Object.keys(rows)).toEqual(['1', '3', '4']);
    expect(rows['1']).toMatchObject({ compliance_state: 'suspended' });
    expect(rows['3']).toMatchObject({ compliance_state: 'protected' });
    expect(rows['4']).toMatchObject({ compliance_state: null });
    expect(summary).toMatchObject({
      linesRead: 15,
      records: 5,
      applied: { delete: 1, mark: 3 },
      notFound: 1,
      rejected: { malformed_json: 1, unknown_action: 1, not_an_object: 1, invalid_id: 3, missing_reason: 1, error_record: 1 },
    });
    const rejects = readFileSync(summary.rejectsFile!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; kind: string; text: string });
    expect(summary.rejectsFile).toBe(`${file}.rejects.ndjson`);
    expect(rejects.map((r) => [r.line, r.kind])).toEqual([
      [5, 'malformed_json'],
      [8, 'unknown_action'],
      [9, 'not_an_object'],
      [10, 'invalid_id'],
      [11, 'invalid_id'],
      [12, 'missing_reason'],
      [13, 'invalid_id'],
      [14, 'error_record'],
    ]);
    expect(rejects[0]!.text).toBe('{"id":"2","action":"delete"\r');
    db.close();
  });

  it('IDs that differ only beyond 2^53: only the one named changes; a numeric JSON id is rejected', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, [{ id: '9007199254740992' }, { id: '9007199254740993' }, { id: '9007199254740994' }]);
    const file = writeResults(dir, 'big.ndjson', [
      result('9007199254740993', 'deleted'),
      result('9007199254740994', 'suspended'),
      '{"id":9007199254740992,"action":"delete","reason":"deleted"}',
      '{"id":9007199254740994,"action":"delete","reason":"deleted"}',
    ]);
    const summary = await apply(db, config, 'tweets', file);
    const rows = rowsOf(db, 'tweets');
    expect(Object.keys(rows)).toEqual(['9007199254740992', '9007199254740994']);
    expect(rows['9007199254740992']).toMatchObject({ compliance_state: null });
    expect(rows['9007199254740994']).toMatchObject({ compliance_state: 'suspended' });
    expect(summary.rejected).toEqual({ invalid_id: 2 });
    db.close();
  });

  it('records outside the shard range are rejected as outside_shard', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, [{ id: '5' }, { id: '50' }, { id: '500' }]);
    const file = writeResults(dir, 'r.ndjson', [result('5', 'deleted'), result('50', 'deleted'), result('500', 'deleted')]);
    const summary = await apply(db, config, 'tweets', file, { shard: { id: 3, idRange: { first: '10' as Id, last: '100' as Id }, submittedIds: 3 } });
    expect(Object.keys(rowsOf(db, 'tweets'))).toEqual(['5', '500']);
    expect(summary.rejected).toEqual({ outside_shard: 2 });
    expect(getApplyRun(db, summary.runId!)).toMatchObject({ shardId: 3 });
    db.close();
  });

  it('applying the same file twice in one run changes nothing the second time; an empty file is fine', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, [{ id: '1' }, { id: '2' }, { id: '3' }]);
    const lines = [result('1', 'suspended'), result('2', 'scrub_geo'), result('3', 'tweet_edited', 'rehydrate')];
    await apply(db, config, 'tweets', writeResults(dir, 'a.ndjson', [...lines, ...lines]));
    const once = rowsOf(db, 'tweets');
    await apply(db, config, 'tweets', writeResults(dir, 'b.ndjson', lines));
    expect(rowsOf(db, 'tweets')).toEqual(once);
    const empty = await apply(db, config, 'tweets', writeResults(dir, 'empty.ndjson', ['']));
    expect(empty).toMatchObject({ state: 'done', records: 0, linesRead: 1 });
    db.close();
  });
});

describe('applyResultsFile: safety gate and dry run', () => {
  it('holds a file whose deletions exceed maxDeleteFraction (nothing applied), then applies it when confirmed', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, Array.from({ length: 10 }, (_, i) => ({ id: String(i + 1) })));
    const lines = [...[1, 2, 3, 4, 5, 6].map((i) => result(String(i), 'deleted')), result('7', 'suspended')];
    const file = writeResults(dir, 'many.ndjson', lines);
    const before = rowsOf(db, 'tweets');
    const held = await apply(db, config, 'tweets', file, { confirmDeletions: false });
    expect(held).toMatchObject({ state: 'held', wouldDelete: 6, applied: { delete: 0, mark: 0 } });
    expect(rowsOf(db, 'tweets')).toEqual(before);
    expect(getApplyRun(db, held.runId!)).toMatchObject({ state: 'held', checkpointLine: 0 });
    expect(existsSync(`${file}.rejects.ndjson`)).toBe(false);
    const confirmed = await apply(db, config, 'tweets', file, { confirmDeletions: true });
    expect(confirmed).toMatchObject({ state: 'done', applied: { delete: 6, mark: 1 } });
    expect(Object.keys(rowsOf(db, 'tweets'))).toEqual(['7', '8', '9', '10']);
    db.close();
  });

  it('counts only deletions of stored rows: many delete lines for IDs not stored pass the gate', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, Array.from({ length: 10 }, (_, i) => ({ id: String(i + 1) })));
    const lines = [...[1, 2, 3].map((i) => result(String(i), 'deleted')), ...[91, 92, 93, 94, 95].map((i) => result(String(i), 'deleted'))];
    const summary = await apply(db, config, 'tweets', writeResults(dir, 'r.ndjson', lines), { confirmDeletions: false });
    expect(summary).toMatchObject({ state: 'done', applied: { delete: 3 }, notFound: 5 });
    // With the shard's own denominator, the same file is held.
    const again = await apply(db, config, 'tweets', writeResults(dir, 's.ndjson', [...[4, 5, 6].map((i) => result(String(i), 'deleted'))]), {
      confirmDeletions: false,
      shard: { id: 1, idRange: { first: '1' as Id, last: '10' as Id }, submittedIds: 4 },
    });
    expect(again).toMatchObject({ state: 'held', wouldDelete: 3 });
    db.close();
  });

  it('dry run changes nothing (no run row, no rejects file) and reports what would change', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir);
    insertTweets(db, Array.from({ length: 4 }, (_, i) => ({ id: String(i + 1), geo_lat: 1 })));
    const file = writeResults(dir, 'r.ndjson', [result('1', 'deleted'), result('2', 'deleted'), result('3', 'deleted'), result('4', 'suspended'), result('9', 'scrub_geo'), 'junk']);
    const before = rowsOf(db, 'tweets');
    const summary = await apply(db, config, 'tweets', file, { dryRun: true, confirmDeletions: false });
    expect(summary).toMatchObject({
      runId: null,
      state: 'held',
      wouldDelete: 3,
      applied: { delete: 3, mark: 1, scrub_geo: 0 },
      notFound: 1,
      rejected: { malformed_json: 1 },
      rejectsFile: null,
    });
    expect(rowsOf(db, 'tweets')).toEqual(before);
    expect(db.prepare('SELECT count(*) FROM cs_apply_runs').pluck().get()).toBe(0n);
    expect(existsSync(`${file}.rejects.ndjson`)).toBe(false);
    db.close();
  });
});

describe('applyResultsFile: checkpoints', () => {
  it('stops after the current batch when aborted, and resuming the run gives the uninterrupted result', async () => {
    const dir = tempDir();
    const { config, db } = makeStore(dir, { reconcile: { batchSize: 4 } });
    insertTweets(db, Array.from({ length: 30 }, (_, i) => ({ id: String(100 + i), author_id: '1', raw_json: '{"geo":1,"x":2}', geo_lat: 3 })));
    const reasons = ['deleted', 'suspended', 'scrub_geo', 'protected', 'tweet_edited'];
    const lines: (object | string)[] = Array.from({ length: 30 }, (_, i) => result(String(100 + ((i * 7) % 30)), reasons[i % 5]!, i % 5 === 4 ? 'rehydrate' : 'delete'));
    lines.splice(5, 0, '', 'broken');
    const file = writeResults(dir, 'r.ndjson', lines);
    db.close();
    copyFileSync(config.store.path, path.join(dir, 'copy.db'));

    const interrupted = openStore(config.store.path);
    const controller = new AbortController();
    const first = await apply(interrupted, config, 'tweets', file, {
      signal: controller.signal,
      onProgress: (p) => p.phase === 'apply' && p.linesRead >= 10 && controller.abort(),
    });
    expect(first.state).toBe('interrupted');
    const run = getApplyRun(interrupted, first.runId!)!;
    expect(run.state).toBe('running');
    expect(run.checkpointLine).toBeGreaterThanOrEqual(10);
    expect(run.checkpointLine).toBeLessThan(32);
    const resumed = await apply(interrupted, config, 'tweets', file, { runId: first.runId!, now: () => new Date('2030-01-01') });
    expect(resumed).toMatchObject({ state: 'done', runId: first.runId, linesRead: 32, records: 30, rejected: { malformed_json: 1 } });

    const straight = openStore(path.join(dir, 'copy.db'));
    const once = await apply(straight, config, 'tweets', file);
    expect(rowsOf(interrupted, 'tweets')).toEqual(rowsOf(straight, 'tweets'));
    expect(readAuditCounts(interrupted, resumed.runId!)).toEqual(readAuditCounts(straight, once.runId!));
    const { elapsedMs: _a, runId: _b, ...resumedTotals } = resumed;
    const { elapsedMs: _c, runId: _d, ...onceTotals } = once;
    expect({ ...resumedTotals, rejectsFile: null }).toEqual({ ...onceTotals, rejectsFile: null });
    expect(readFileSync(`${file}.rejects.ndjson`, 'utf8').trim().split('\n')).toHaveLength(1);
    interrupted.close();
    straight.close();
  });
});

describe('applyResultsFile: the reference result files', () => {
  for (const type of ['tweets', 'users'] as const) {
    it(`${type}_result_sample.ndjson applies cleanly`, async () => {
      const dir = tempDir();
      const { config, db } = makeStore(dir);
      const file = path.resolve(import.meta.dirname, `../fixtures/reference/${type}_result_sample.ndjson`);
      const records = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as { id: string; reason: string });
      if (type === 'tweets') insertTweets(db, records.map((r) => ({ id: r.id })));
      else {
        insertUsers(db, records.map((r) => r.id));
        insertTweets(db, records.map((r, i) => ({ id: String(1000 + i), author_id: r.id })));
      }
      const summary = await apply(db, config, type, file);
      const deletes = records.filter((r) => r.reason === 'deleted').length;
      expect(summary).toMatchObject({ state: 'done', linesRead: 21, records: 20, notFound: 0, rejected: {}, rejectsFile: null });
      expect(summary.applied).toEqual({ delete: deletes, mark: 20 - deletes, scrub_geo: 0, ignore: 0 });
      const rows = rowsOf(db, type);
      for (const r of records) {
        if (r.reason === 'deleted') expect(rows[r.id]).toBeUndefined();
        else expect(rows[r.id]).toMatchObject({ compliance_state: r.reason, compliance_reason: r.reason });
      }
      if (type === 'users') expect(summary.cascaded).toEqual({ deleted: deletes, marked: 20 - deletes, scrubbed: 0 });
      db.close();
    });
  }
});
