import { createReadStream } from 'node:fs';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
// CommonJS module: under ESM its default export is the JsonlParser class itself.
import JsonlParser from 'stream-json/jsonl/Parser.js';

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

/**
 * Streams a JSON-lines file through stream-json's JSONL parser, calling `onLine(lineNumber, value)` for every
 * physical line (1-based), with a BadLine for blank and malformed lines; `onLine` returns true to stop reading.
 * It runs synchronously inside the parser's 'data' event, so a caller may apply a whole batch there and the file is
 * not read further meanwhile: memory stays flat whatever the file size. A caller that returns a promise (to let the
 * event loop run between short transactions) gets the next line only once it settles; it resolves to true to stop.
 *
 * Two things make stream-json's line numbering exact:
 * - its `errorIndicator` hook turns a line JSON.parse rejects into a BadLine instead of an uncaught exception (or, with
 *   `checkErrors`, a stream error ending the file), so every non-empty line is pushed and counted by its `key`;
 * - it drops empty lines without counting them, so the key would drift from the line number after the first blank
 *   line (real result files have one at line 3). BlankLineFiller puts one space on each empty line; the space fails
 *   JSON.parse, comes back through errorIndicator as a blank BadLine, and every physical line then has its key.
 */
export type LineAnswer = boolean | void | Promise<boolean | void>;

export function readResultLines(
  file: string,
  onLine: (line: number, value: unknown) => LineAnswer,
  onBytes?: (bytesRead: number) => void,
): Promise<ReadLinesResult> {
  return new Promise((resolve, reject) => {
    const source = createReadStream(file, { highWaterMark: READ_CHUNK });
    // errorIndicator is in stream-json 1.9 but missing from @types/stream-json.
    const options: JsonlParser.JsonlParserOptions & { errorIndicator: typeof toBadLine } = { errorIndicator: toBadLine };
    const parser = new JsonlParser(options);
    let lines = 0;
    let stopped = false;
    let failure: unknown = null;
    source.on('data', () => onBytes?.(source.bytesRead));
    parser.on('data', ({ key, value }: { key: number; value: unknown }) => {
      if (stopped) return;
      lines = key + 1;
      let answer: LineAnswer = undefined;
      try {
        answer = onLine(lines, value);
      } catch (err) {
        failure = err;
        stopped = true;
      }
      if (answer instanceof Promise) {
        // The caller works across turns of the event loop: no line is delivered until it is done.
        parser.pause();
        answer.then(
          (stop) => {
            if (stop === true) {
              stopped = true;
              parser.destroy();
            } else parser.resume();
          },
          (err: unknown) => {
            failure = err;
            stopped = true;
            parser.destroy();
          },
        );
        return;
      }
      if (answer === true) stopped = true;
      if (stopped) parser.destroy();
    });
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (failure !== null) reject(failure);
      else if (err && !stopped) reject(err);
      else resolve({ lines, bytesRead: source.bytesRead, stopped });
    };
    pipeline(source, new BlankLineFiller(), parser, (err) => {
      // The pipeline ends with the input; lines still buffered in a paused parser are delivered before 'end'.
      if (err || stopped || parser.readableEnded) settle(err);
      else {
        parser.once('end', () => settle());
        parser.once('close', () => settle());
      }
    });
  });
}

function toBadLine(_error: unknown, input: string): unknown {
  // A byte-order mark is the one harmless reason a JSON line fails to parse.
  if (input.charCodeAt(0) === 0xfeff) {
    try {
      return JSON.parse(input.slice(1));
    } catch {
      // fall through: malformed
    }
  }
  return new BadLine(input);
}

/**
 * Each chunk becomes one string in the parser. Under V8's large-object size (128 KiB) that string and its lines die
 * young in a scavenge; at 1 MiB every chunk went to large-object space, kept until a full GC, and peak RSS of a 1M-line
 * apply swung between 160 and 230 MB. At 64 KiB the reader alone peaks at ~91 MB instead of ~118, at ~0.2 s more per
 * million lines (bench/README.md).
 */
export const READ_CHUNK = 64 * 1024;

const NL = 0x0a;
const SPACE = Buffer.from(' ');

/** Puts a space on every empty line (see readResultLines). `\n` never occurs inside a UTF-8 sequence, so bytes are safe. */
class BlankLineFiller extends Transform {
  private afterNewline = true; // the file's start behaves like the start of a line

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) return callback();
    const parts: Buffer[] = [];
    let from = 0;
    if (this.afterNewline && chunk[0] === NL) parts.push(SPACE);
    for (let at = chunk.indexOf('\n\n'); at !== -1; at = chunk.indexOf('\n\n', at + 1)) {
      parts.push(chunk.subarray(from, at + 1), SPACE);
      from = at + 1;
    }
    this.afterNewline = chunk[chunk.length - 1] === NL;
    if (parts.length === 0) return callback(null, chunk);
    parts.push(chunk.subarray(from));
    callback(null, Buffer.concat(parts));
  }
}
