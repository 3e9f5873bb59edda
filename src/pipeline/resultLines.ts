import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** A line that is not JSON: blank (or whitespace only, e.g. a CRLF blank line) or malformed. */
export class BadLine {
  constructor(readonly text: string) {}
  get blank(): boolean {
    return this.text.trim() === '';
  }
}

export interface ReadLinesResult {
  /** Physical lines seen (the last one counts even without a final newline). */
  lines: number;
  bytesRead: number;
  /** True when onLine asked to stop before the end of the file. */
  stopped: boolean;
}

export type LineAnswer = boolean | void | Promise<boolean | void>;

/**
 * Streams a JSON-lines file, calling `onLine(lineNumber, value, text)` for every physical line (1-based): `value` is
 * the parsed JSON, or a BadLine for blank and malformed lines; `text` is the line exactly as read (without its `\n`),
 * so a rejected line can be kept as it was — a numeric id parsed by JSON.parse is already rounded. `onLine` returns
 * true to stop reading. It runs synchronously inside the read stream's 'data' event, so a caller may apply a whole
 * batch there and the file is not read further meanwhile: memory stays flat whatever the file size. A caller that
 * returns a promise (to let the event loop run between short transactions) gets the next line only once it settles;
 * it resolves to true to stop.
 *
 * Lines are split by hand rather than by a JSONL library: splitting and JSON.parse are all such a parser does, and
 * none hands over the text of the lines it parsed (stream-json gives values only).
 */
export function readResultLines(
  file: string,
  onLine: (line: number, value: unknown, text: string) => LineAnswer,
  onBytes?: (bytesRead: number) => void,
): Promise<ReadLinesResult> {
  return new Promise((resolve, reject) => {
    const source = createReadStream(file, { highWaterMark: READ_CHUNK });
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let lines = 0;
    let stopped = false;
    let ended = false;
    /** Lines split from the chunks read but not delivered yet (only while a caller's promise is pending). */
    let queue: string[] = [];
    let next = 0;
    let waiting = false;
    let settled = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on the stream's own error unchanged
      if (error !== undefined) reject(error);
      else resolve({ lines, bytesRead: source.bytesRead, stopped });
    };
    const fail = (error: unknown) => {
      stopped = true;
      source.destroy();
      settle(error);
    };
    /** Delivers queued lines until one answers with a promise (then waits for it), the caller stops, or none is left. */
    const deliver = (): void => {
      while (next < queue.length && !stopped) {
        const text = queue[next++]!;
        lines++;
        let answer: LineAnswer;
        try {
          answer = onLine(lines, parseLine(text), text);
        } catch (err) {
          return fail(err);
        }
        if (answer instanceof Promise) {
          waiting = true;
          source.pause();
          answer.then((stop) => {
            waiting = false;
            if (stop === true) stopped = true;
            deliver();
          }, fail);
          return;
        }
        if (answer === true) stopped = true;
      }
      queue = [];
      next = 0;
      if (stopped) {
        source.destroy();
        settle();
      } else if (ended) settle();
      else source.resume();
    };
    source.on('data', (chunk: Buffer | string) => {
      if (stopped) return;
      onBytes?.(source.bytesRead);
      const parts = (rest + decoder.write(chunk as Buffer)).split('\n');
      rest = parts.pop()!;
      queue = next < queue.length ? queue.slice(next).concat(parts) : parts;
      next = 0;
      if (!waiting) deliver();
    });
    source.on('end', () => {
      const tail = rest + decoder.end();
      rest = '';
      if (tail !== '') queue.push(tail);
      ended = true;
      if (!waiting) deliver();
    });
    source.on('error', (err) => settle(err));
  });
}

function parseLine(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // A byte-order mark is the one harmless reason a JSON line fails to parse.
    if (text.charCodeAt(0) === 0xfeff) {
      try {
        return JSON.parse(text.slice(1));
      } catch {
        // fall through: malformed
      }
    }
    return new BadLine(text);
  }
}

/**
 * Each chunk becomes one string. Under V8's large-object size (128 KiB) that string and its lines die young in a
 * scavenge; at 1 MiB every chunk went to large-object space, kept until a full GC, and peak RSS of a 1M-line apply
 * swung between 160 and 230 MB. At 64 KiB the reader alone peaks at ~91 MB instead of ~118, at ~0.2 s more per
 * million lines (bench/README.md).
 */
export const READ_CHUNK = 64 * 1024;

const SNIFF_BYTES = 64 * 1024;

/**
 * Why a results file cannot be JSON lines at all, said the way its owner can act on it; null when it may be
 * (an empty file is: X lists only IDs that need action). Looks at the first 64 KiB only: a file that starts as text
 * and goes wrong later is judged line by line, and one whose every line is rejected fails after reading.
 */
export function describeUnusableResults(file: string): string | null {
  const fd = openSync(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(SNIFF_BYTES);
    head = head.subarray(0, readSync(fd, head, 0, SNIFF_BYTES, 0));
  } finally {
    closeSync(fd);
  }
  if (head.length === 0) return null;
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip-compressed: gunzip it first';
  if (head.subarray(0, 4).equals(Buffer.from('PK\u0003\u0004', 'latin1'))) return 'a zip archive: unzip it first';
  if (head.includes(0) || !isUtf8Prefix(head)) return 'binary, not text';
  const text = head.toString('utf8').replace(/^\uFEFF/, '');
  const first = text.trimStart();
  if (first.startsWith('[')) return 'a JSON array, not JSON lines: write one object per line (e.g. jq -c \'.[]\')';
  const firstLine = first.split('\n', 1)[0]!.trim();
  if (firstLine === '{') return 'pretty-printed JSON (one object over several lines), not JSON lines: write one object per line (e.g. jq -c .)';
  return null;
}

/** Valid UTF-8, allowing a character cut at the end of the sample. */
function isUtf8Prefix(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}
