import { createHash, type Hash } from 'node:crypto';
import { parseId } from '../types.js';
import { crc32c } from './crc32c.js';
import {
  MIX_OUTCOMES,
  hashBytesUnit,
  hashStart,
  hashStringUnit,
  mixThresholds,
  outcomePrefix,
  pickOutcome,
  type EmulatorJobType,
  type HashState,
  type OutcomeMix,
  type OutcomeRecordFields,
  type OutcomeRules,
} from './outcomes.js';

/** One uploaded ID that needs action; `outcome` is shared (a mix outcome or the pinned rule), never copied per ID. */
export interface UploadEvent {
  id: string;
  outcome: OutcomeRecordFields;
}

export interface ParsedUpload {
  /** Valid ID lines, duplicates included. */
  ids: number;
  bytes: number;
  md5: Buffer;
  crc32c: number;
  /** IDs needing action, first occurrence only, in upload order. Only these are kept: ~10% of the upload. */
  events: UploadEvent[];
  /** Non-blank lines that are not IDs (the byte-path mode answers them with `invalid_id` error records). */
  invalid: string[];
}

export interface OutcomeSettings {
  type: EmulatorJobType;
  seed: string;
  mix: OutcomeMix;
  rules?: OutcomeRules | undefined;
}

const NEWLINE = 10;
const MAX_LINE = 4096;
const MAX_INVALID_KEPT = 100_000;
const INT64_MAX = Buffer.from('9223372036854775807');

/** Whether the 19 digits at `start` are above 2^63 - 1, compared byte by byte. */
function exceedsInt64(buf: Buffer, start: number): boolean {
  for (let i = 0; i < 19; i++) {
    const diff = buf[start + i]! - INT64_MAX[i]!;
    if (diff !== 0) return diff > 0;
  }
  return false;
}

function isBlank(byte: number): boolean {
  return byte === 32 || byte === 9 || byte === 13 || byte === 11 || byte === 12;
}

/**
 * Parses an upload as it streams in, tolerantly (LF or CRLF, surrounding whitespace, blank lines, a BOM), keeping only
 * the outcomes: a 5M-ID upload never sits in memory as 5M strings. Hashes bytes directly (see outcomes.ts), so the
 * answer equals `outcomeFor` for every line.
 */
export class UploadParser {
  private readonly state: HashState;
  private readonly thresholds: number[];
  private readonly md5: Hash = createHash('md5');
  private crc = 0;
  private carry: Buffer = Buffer.alloc(0);
  private first = true;
  private readonly seen = new Set<string>();
  private readonly result: Omit<ParsedUpload, 'md5' | 'crc32c'> = { ids: 0, bytes: 0, events: [], invalid: [] };

  constructor(private readonly settings: OutcomeSettings) {
    this.state = hashStart(outcomePrefix(settings.type, settings.seed));
    this.thresholds = mixThresholds(settings.mix);
  }

  write(chunk: Buffer): void {
    this.md5.update(chunk);
    this.crc = crc32c(chunk, this.crc);
    this.result.bytes += chunk.length;
    if (this.first && chunk.length > 0) {
      this.first = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    const combined = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const lastNewline = combined.lastIndexOf(NEWLINE);
    if (lastNewline < 0) {
      // A line with no end yet; a runaway one is kept short, it can only be invalid.
      this.carry = combined.length > MAX_LINE ? Buffer.from(combined.subarray(0, MAX_LINE)) : Buffer.from(combined);
      return;
    }
    this.parse(combined, 0, lastNewline + 1);
    this.carry = Buffer.from(combined.subarray(lastNewline + 1));
  }

  end(): ParsedUpload {
    if (this.carry.length) this.parse(this.carry, 0, this.carry.length);
    this.carry = Buffer.alloc(0);
    this.seen.clear(); // only needed while parsing; a finished session must not pin it
    return { ...this.result, md5: this.md5.digest(), crc32c: this.crc };
  }

  private parse(buf: Buffer, from: number, to: number): void {
    // One pass over the bytes: a native indexOf per line costs more than the scan itself.
    let lineStart = from;
    for (let i = from; i < to; i++) {
      if (buf[i] === NEWLINE) {
        if (i > lineStart) this.line(buf, lineStart, i);
        lineStart = i + 1;
      }
    }
    if (lineStart < to) this.line(buf, lineStart, to);
  }

  private line(buf: Buffer, start: number, end: number): void {
    while (start < end && isBlank(buf[start]!)) start++;
    while (end > start && isBlank(buf[end - 1]!)) end--;
    if (start === end) return;
    const length = end - start;
    let digits = length <= 19;
    for (let i = start; digits && i < end; i++) {
      const c = buf[i]!;
      if (c < 48 || c > 57) digits = false;
    }
    if (!digits) return this.invalidLine(buf.toString('utf8', start, end));
    const leadingZero = length > 1 && buf[start] === 48;
    if (leadingZero || (length === 19 && buf[start] === 57 && exceedsInt64(buf, start))) {
      // Rare: canonicalise through parseId so the answer matches outcomeFor's.
      const id = parseId(buf.toString('latin1', start, end));
      if (id === null) return this.invalidLine(buf.toString('latin1', start, end));
      this.result.ids++;
      return this.decide(id, () => hashStringUnit(this.state, id));
    }
    this.result.ids++;
    if (this.settings.rules?.size) return this.decide(buf.toString('latin1', start, end), () => hashBytesUnit(this.state, buf, start, end));
    const index = pickOutcome(hashBytesUnit(this.state, buf, start, end), this.thresholds);
    if (index >= 0) this.addEvent(buf.toString('latin1', start, end), MIX_OUTCOMES[index]!);
  }

  private decide(id: string, unit: () => number): void {
    const rules = this.settings.rules;
    if (rules?.has(id)) {
      const rule = rules.get(id);
      if (rule) this.addEvent(id, rule);
      return;
    }
    const index = pickOutcome(unit(), this.thresholds);
    if (index >= 0) this.addEvent(id, MIX_OUTCOMES[index]!);
  }

  private addEvent(id: string, outcome: OutcomeRecordFields): void {
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.result.events.push({ id, outcome });
  }

  private invalidLine(text: string): void {
    if (this.result.invalid.length < MAX_INVALID_KEPT) this.result.invalid.push(text.slice(0, 256));
  }
}

/** Parses a whole upload at once. */
export function parseUpload(body: Buffer, settings: OutcomeSettings): ParsedUpload {
  const parser = new UploadParser(settings);
  parser.write(body);
  return parser.end();
}
