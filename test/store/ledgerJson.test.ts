import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { abandonedCycleSchema, applyRunCountsSchema, cycleSummarySchema, parseLedgerJson } from '../../src/store/ledgerJson.js';

describe('the JSON kept in the ledger', () => {
  it('reads counts_json of every shape it was written in as one shape', () => {
    const first = { linesRead: 12, records: 10, applied: { delete: 3, mark: 1, scrub_geo: 0, ignore: 1 }, notFound: 5, rejected: { malformed_json: 2 }, cascaded: { deleted: 0, marked: 0, scrubbed: 0 } };
    const withChanges = { ...first, changes: { tweets: { deleted: { result: 3 } } }, cut: { line: 16, records: 2 } };
    const now = { linesRead: 12, records: 10, rejected: { malformed_json: 2 } };
    expect(parseLedgerJson(applyRunCountsSchema, JSON.stringify(first), 'run 1')).toEqual(now);
    expect(parseLedgerJson(applyRunCountsSchema, JSON.stringify(withChanges), 'run 2')).toEqual({ ...now, cut: { line: 16, records: 2 } });
    expect(parseLedgerJson(applyRunCountsSchema, JSON.stringify(now), 'run 3')).toEqual(now);
  });

  it('names the row of a value that is not JSON or does not fit', () => {
    expect(() => parseLedgerJson(applyRunCountsSchema, '{"linesRead":', 'cs_apply_runs.counts_json of run 7')).toThrow(
      /^cs_apply_runs\.counts_json of run 7 is not JSON$/,
    );
    expect(() => parseLedgerJson(applyRunCountsSchema, '{"linesRead":"12","records":1,"rejected":{}}', 'cs_apply_runs.counts_json of run 7')).toThrow(
      /cs_apply_runs.counts_json of run 7 does not fit its shape: linesRead:/,
    );
  });

  it('tells a closed cycle summary from an abandoned cycle note', () => {
    const summary = {
      type: 'users',
      cycleId: 3,
      state: 'closed',
      dryRun: false,
      startedAt: '2030-01-01T00:00:00.000Z',
      finishedAt: '2030-01-01T00:01:00.000Z',
      durationMs: 60000,
      idsChecked: 40,
      shards: { total: 2, applied: 2, failed: 0, held: 0 },
      jobsUsed: 2,
      actions: { delete: 1, cascade_delete: 4 },
      byReason: { deleted: { delete: 1, cascade_delete: 4 } },
      notFound: 0,
      rejected: {},
      marksCleared: 0,
      failures: [],
    };
    expect(parseLedgerJson(cycleSummarySchema, JSON.stringify(summary), 'cycle 3')).toEqual(summary);
    expect(parseLedgerJson(abandonedCycleSchema, '{"abandoned":"replaced by a real cycle"}', 'cycle 2')).toEqual({ abandoned: 'replaced by a real cycle' });
    expect(() => parseLedgerJson(cycleSummarySchema, '{"abandoned":"replaced by a real cycle"}', 'cycle 2')).toThrow(StoreError);
  });
});
