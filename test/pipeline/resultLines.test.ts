import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { countFileLines } from '../../src/pipeline/lineCount.js';
import { RejectsWriter } from '../../src/pipeline/rejects.js';
import { BadLine, READ_CHUNK, readResultLines } from '../../src/pipeline/resultLines.js';
import { toResultRecord } from '../../src/pipeline/resultRecords.js';
import { DEFAULT_POLICY } from '../../src/config/schema.js';
import { useTempDir } from '../helpers/tmp.js';

const tempDir = useTempDir();

async function lines(text: string | Buffer): Promise<{ seen: [number, unknown][]; total: number }> {
  const file = path.join(tempDir(), 'in.ndjson');
  writeFileSync(file, text);
  const seen: [number, unknown][] = [];
  const read = await readResultLines(file, (line, value) => {
    seen.push([line, value instanceof BadLine ? (value.blank ? 'BLANK' : `BAD:${value.text}`) : value]);
  });
  expect(await countFileLines(file)).toBeGreaterThanOrEqual(seen.filter(([, v]) => v !== 'BLANK').length);
  return { seen, total: read.lines };
}

describe('readResultLines (JSON lines with exact line numbers and the text of each line)', () => {
  it('numbers every physical line: blank, whitespace, CRLF, malformed, BOM, no final newline', async () => {
    const { seen, total } = await lines('\uFEFF{"a":1}\n\n\r\n  \n{"b":2}\r\nnope\n\n{"c":3}');
    expect(seen).toEqual([
      [1, { a: 1 }],
      [2, 'BLANK'],
      [3, 'BLANK'],
      [4, 'BLANK'],
      [5, { b: 2 }],
      [6, 'BAD:nope'],
      [7, 'BLANK'],
      [8, { c: 3 }],
    ]);
    expect(total).toBe(8);
  });

  it('keeps counting across read chunks, with blank lines on a chunk boundary and multi-byte characters split', async () => {
    const chunk = READ_CHUNK;
    const filler = `{"t":"${'é'.repeat(20)}"}\n`; // 2-byte characters: some will straddle the boundary
    let body = filler.repeat(Math.floor((chunk - 2) / Buffer.byteLength(filler)));
    body += 'x'.repeat(chunk - 1 - Buffer.byteLength(body)); // the line ends exactly at the boundary…
    body += '\n\n\n{"end":true}\n'; // …and blank lines start the next chunk
    const { seen } = await lines(Buffer.from(body));
    const n = seen.length;
    expect(seen[n - 1]).toEqual([n, { end: true }]);
    expect(seen[n - 2]).toEqual([n - 1, 'BLANK']);
    expect(seen[n - 3]).toEqual([n - 2, 'BLANK']);
    expect(String(seen[n - 4]![1])).toMatch(/^BAD:x+$/);
    expect(seen.slice(0, n - 4).every(([, v]) => (v as { t: string }).t === 'é'.repeat(20))).toBe(true);
  });

  it('stops when asked', async () => {
    const file = path.join(tempDir(), 'in.ndjson');
    writeFileSync(file, '{"a":1}\n'.repeat(10_000));
    let seen = 0;
    const read = await readResultLines(file, (line) => (++seen, line === 3));
    expect(read).toMatchObject({ stopped: true, lines: 3 });
    expect(seen).toBe(3);
  });
});

describe('toResultRecord', () => {
  const policy = { ...DEFAULT_POLICY };
  it('validates id, action and reason, and maps the action taken', () => {
    expect(toResultRecord({ id: '0012', action: 'delete', reason: 'deleted' }, policy)).toMatchObject({ id: '12', taken: 'delete' });
    // eslint-disable-next-line no-loss-of-precision -- a JSON number ID past 2^53 is the invalid input under test
    expect(toResultRecord({ id: 9007199254740993, action: 'delete', reason: 'deleted' }, policy)).toBe('invalid_id');
    expect(toResultRecord({ id: '9223372036854775808', action: 'delete', reason: 'deleted' }, policy)).toBe('invalid_id');
    expect(toResultRecord({ id: '1', action: 'nuke', reason: 'deleted' }, policy)).toBe('unknown_action');
    expect(toResultRecord({ id: '1', action: 'delete' }, policy)).toBe('missing_reason');
    expect(toResultRecord(null, policy)).toBe('not_an_object');
    expect(toResultRecord({ id: '1', action: 'delete', reason: 'mystery' }, policy)).toMatchObject({ taken: 'delete' });
    expect(toResultRecord({ id: '1', action: 'scrub_geo', reason: 'mystery' }, policy)).toMatchObject({ taken: 'scrub_geo' });
    expect(toResultRecord({ id: '1', action: 'rehydrate', reason: 'mystery' }, policy)).toMatchObject({ taken: 'mark', state: 'edited' });
    expect(toResultRecord({ id: '1', action: 'delete', reason: 'constructor' }, policy)).toMatchObject({ taken: 'delete' });
  });
});

describe('RejectsWriter.resumed', () => {
  it('drops the entries written after the checkpoint (the batch a crash cut short)', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'r.ndjson');
    const fresh = RejectsWriter.fresh(input);
    for (const line of [2, 5, 9]) fresh.add(line, 'malformed_json', `bad ${line}`);
    fresh.close();
    const resumed = await RejectsWriter.resumed(input, 5);
    resumed.add(9, 'malformed_json', 'bad 9');
    resumed.close();
    const lines = readFileSync(`${input}.rejects.ndjson`, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { line: number }).line);
    expect(lines).toEqual([2, 5, 9]);
  });
});
