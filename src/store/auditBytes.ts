import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { CheckResult } from './audit.js';
import type { Db } from './open.js';
import type { SchemaInfo } from './schemaInfo.js';

/**
 * The byte scan of `audit --scan-bytes`. The ledger keeps no content, so the one thing it can recognise in the files
 * is a tombstoned ID written out as decimal text (raw JSON, URLs, text ID columns, FTS terms). It looks for such IDs
 * where nothing live should hold them:
 *
 * - free pages of the main file (every page the b-trees do not use), read whole;
 * - the free space inside used pages (the unallocated gap and the freeblocks, from each page's header): what a
 *   deletion leaves unless secure_delete zeroed it;
 * - the FTS term stores (FTS5 `_data`/`_idx`, FTS4 `_segments`/`_segdir`), read whole: a deleted row's terms stay in
 *   older segments until they are merged;
 * - the WAL: page versions a later frame replaced (or never committed) read whole, the newest version of each page
 *   like the main file's.
 *
 * Pages of the ledger (`cs_*` tables, whose hook payloads list deleted IDs by design) are left out. IDs shorter than
 * MIN_DIGITS are not looked for: such numbers occur by chance (counts, timestamps).
 */
export const MIN_DIGITS = 15;
const MAX_DIGITS = 19; // 2^63 - 1 has 19 digits

/** What a page holds, for the scan: skipped, its free space only, or read whole. */
const enum PageKind {
  Skip = 0,
  FreeSpaceOnly = 1,
  Whole = 2,
}

const TERM_STORES = ['_data', '_idx', '_segments', '_segdir'];

export function scanDeletedBytes(db: Db, storePath: string, schema: SchemaInfo, limit: number): CheckResult {
  const result: CheckResult = { count: 0, examples: [], locations: {}, notes: [] };
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  const pageCount = Number(db.pragma('page_count', { simple: true }));

  // Every used page of the current state, by the table (or index's table) it belongs to.
  const tableOf = schema.tableOfEveryObject();
  const termStores = new Set(
    schema
      .ftsTables()
      .flatMap((f) => f.shadowTables.filter((s) => TERM_STORES.some((suffix) => s.toLowerCase() === `${f.name}${suffix}`.toLowerCase())))
      .map((s) => s.toLowerCase()),
  );
  const kinds = new Uint8Array(pageCount + 1).fill(PageKind.Whole); // unused pages are free pages: read whole
  const owner: string[] = [];
  for (const row of db.prepare('SELECT name, pageno, pagetype FROM dbstat').iterate() as Iterable<{ name: string; pageno: bigint; pagetype: string }>) {
    const page = Number(row.pageno);
    if (page > pageCount) continue;
    const table = tableOf.get(row.name.toLowerCase()) ?? row.name.toLowerCase();
    if (table.startsWith('cs_')) kinds[page] = PageKind.Skip;
    else if (termStores.has(table)) kinds[page] = PageKind.Whole;
    else if (row.pagetype === 'overflow') kinds[page] = PageKind.Skip; // the live payload of one long value
    else kinds[page] = PageKind.FreeSpaceOnly;
    owner[page] = row.name;
  }
  kinds[0] = PageKind.Skip;

  const candidates = new Map<string, Set<string>>();
  const found = (digits: string, where: string) => {
    let places = candidates.get(digits);
    if (!places) candidates.set(digits, (places = new Set()));
    places.add(where);
  };
  const wherePage = (page: number, kind: PageKind) =>
    kind === PageKind.FreeSpaceOnly ? `free space in pages of ${owner[page]}` : owner[page] ? `FTS segments of ${owner[page]}` : 'free pages';

  const scanPage = (bytes: Buffer, page: number, kind: PageKind, where: string) => {
    if (kind === PageKind.Skip) return;
    if (kind === PageKind.Whole) return digitRuns(bytes, 0, bytes.length, (d) => found(d, where));
    for (const [from, to] of freeRegions(bytes, page === 1 ? 100 : 0)) digitRuns(bytes, from, to, (d) => found(d, where));
  };

  // The main file, a megabyte at a time.
  const fd = openSync(storePath, 'r');
  try {
    const perRead = Math.max(1, Math.floor((1 << 20) / pageSize));
    const buffer = Buffer.alloc(perRead * pageSize);
    for (let first = 1; first <= pageCount; first += perRead) {
      const n = readSync(fd, buffer, 0, buffer.length, (first - 1) * pageSize);
      for (let i = 0; i * pageSize < n; i++) {
        const page = first + i;
        if (page > pageCount) break;
        const kind = kinds[page]!;
        scanPage(buffer.subarray(i * pageSize, (i + 1) * pageSize), page, kind, `main file: ${wherePage(page, kind)}`);
      }
    }
  } finally {
    closeSync(fd);
  }

  const wal = `${storePath}-wal`;
  if (existsSync(wal) && statSync(wal).size > 32) scanWal(wal, kinds, (bytes, page, kind) => scanPage(bytes, page, kind, `WAL: ${kind === PageKind.Whole ? 'old page versions' : wherePage(page, kind)}`));
  if (existsSync(`${storePath}-journal`)) result.notes.push(`${storePath}-journal exists (an interrupted transaction): not scanned`);

  // Which of the numbers found are tombstoned IDs.
  // The type prefix lets the lookup use the (type, id) primary key instead of scanning every tombstone.
  const isTombstoned = db.prepare("SELECT 1 FROM cs_tombstones WHERE type IN ('tweets', 'users') AND id = ? LIMIT 1").pluck();
  for (const [digits, places] of candidates) {
    if (digits.length === MAX_DIGITS && digits > '9223372036854775807') continue;
    if (!isTombstoned.get(BigInt(digits))) continue;
    result.count++;
    for (const where of places) {
      result.locations[where] = (result.locations[where] ?? 0) + 1;
      if (result.examples.length < limit) result.examples.push({ where, id: digits });
    }
  }
  const short = Number(db.prepare(`SELECT count(*) FROM cs_tombstones WHERE id < ${10n ** BigInt(MIN_DIGITS - 1)}`).pluck().get() as bigint);
  if (short) result.notes.push(`${short} tombstoned IDs have fewer than ${MIN_DIGITS} digits and are not looked for (such numbers occur by chance)`);
  return result;
}

/**
 * The free space of a b-tree page: the gap between the cell pointer array and the cell content area, and each
 * freeblock. `at` is where the page header starts (100 on page 1). A page that is not a b-tree page (an overflow or
 * freelist page seen through the WAL) has no such header: it yields nothing.
 */
export function freeRegions(page: Buffer, at: number): [number, number][] {
  const type = page[at];
  if (type !== 2 && type !== 5 && type !== 10 && type !== 13) return [];
  const header = type === 2 || type === 5 ? 12 : 8;
  const cells = page.readUInt16BE(at + 3);
  const contentStart = page.readUInt16BE(at + 5) || 65536;
  const regions: [number, number][] = [];
  const gapStart = at + header + 2 * cells;
  if (contentStart > gapStart) regions.push([gapStart, Math.min(contentStart, page.length)]);
  let block = page.readUInt16BE(at + 1);
  for (let guard = 0; block && block + 4 <= page.length && guard < page.length / 4; guard++) {
    const size = page.readUInt16BE(block + 2);
    regions.push([block + 4, Math.min(block + size, page.length)]);
    block = page.readUInt16BE(block);
  }
  return regions;
}

/** Calls `hit` with every run of MIN_DIGITS to MAX_DIGITS ASCII digits in bytes[from, to) not touching another digit. */
export function digitRuns(bytes: Buffer, from: number, to: number, hit: (digits: string) => void): void {
  let start = -1;
  for (let i = from; i <= to; i++) {
    const c = i < to ? bytes[i]! : 0;
    if (c >= 0x30 && c <= 0x39) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      const length = i - start;
      if (length >= MIN_DIGITS && length <= MAX_DIGITS) hit(bytes.toString('latin1', start, i));
      start = -1;
    }
  }
}

/**
 * Reads the WAL's frames. The newest committed frame of each page is that page's current version (scanned by the
 * page's kind); every other frame (replaced by a later one, not committed, or left from before the WAL was reset) is
 * an old version and read whole, unless the page is the ledger's.
 */
function scanWal(file: string, kinds: Uint8Array, scan: (bytes: Buffer, page: number, kind: PageKind) => void): void {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(32);
    readSync(fd, header, 0, 32, 0);
    const pageSize = header.readUInt32BE(8) || 65536;
    const salt1 = header.readUInt32BE(16);
    const salt2 = header.readUInt32BE(20);
    const frameSize = 24 + pageSize;
    const frames = Math.floor((statSync(file).size - 32) / frameSize);
    const frameHeader = Buffer.alloc(24);
    // First pass: the newest committed frame of each page.
    const newest = new Map<number, number>();
    const pending = new Map<number, number>();
    for (let f = 0; f < frames; f++) {
      readSync(fd, frameHeader, 0, 24, 32 + f * frameSize);
      const page = frameHeader.readUInt32BE(0);
      if (frameHeader.readUInt32BE(8) !== salt1 || frameHeader.readUInt32BE(12) !== salt2) break;
      pending.set(page, f);
      if (frameHeader.readUInt32BE(4) !== 0) {
        for (const [p, at] of pending) newest.set(p, at);
        pending.clear();
      }
    }
    const image = Buffer.alloc(pageSize);
    for (let f = 0; f < frames; f++) {
      readSync(fd, frameHeader, 0, 24, 32 + f * frameSize);
      const page = frameHeader.readUInt32BE(0);
      const kind = page < kinds.length ? (kinds[page] as PageKind) : PageKind.Whole;
      if (kind === PageKind.Skip) continue;
      readSync(fd, image, 0, pageSize, 32 + f * frameSize + 24);
      scan(image, page, newest.get(page) === f ? kind : PageKind.Whole);
    }
  } finally {
    closeSync(fd);
  }
}
