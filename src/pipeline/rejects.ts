import { closeSync, createReadStream, createWriteStream, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { PRIVATE_FILE_MODE } from '../privateFiles.js';
import type { RejectKind } from './resultRecords.js';

/** Where the rejected lines of a results file go: next to it, for inspection. */
export function rejectsPathFor(input: string): string {
  return `${input}.rejects.ndjson`;
}

/** Longer lines are clipped (and say so): a results line is ~100 bytes, one of 64 KiB is not a result at all. */
const MAX_TEXT = 64 * 1024;

/**
 * The rejects file: `{"line":N,"kind":"…","text":"…"}` per rejected line, `text` being the line exactly as read
 * (decoded, it is the line byte for byte: a numeric id keeps every digit), with `"clipped":true` past 64 KiB.
 * Entries are buffered per batch and written just before the batch commits, and the file is created only when
 * there is something to write.
 */
export class RejectsWriter {
  private fd: number | null = null;
  private pending = '';

  private constructor(
    readonly path: string,
    private readonly append: boolean,
  ) {}

  /** A new run starts a fresh file: a stale one from an earlier run would be mistaken for this run's. */
  static fresh(input: string): RejectsWriter {
    const path = rejectsPathFor(input);
    rmSync(path, { force: true });
    return new RejectsWriter(path, false);
  }

  /**
   * A resumed run keeps the entries of committed lines and drops any written for the batch the crash cut short
   * (they are written just before their batch commits, so they would otherwise appear twice).
   */
  static async resumed(input: string, checkpointLine: number): Promise<RejectsWriter> {
    const path = rejectsPathFor(input);
    const temp = `${path}.tmp`;
    try {
      const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
      const out = createWriteStream(temp, { mode: PRIVATE_FILE_MODE });
      for await (const text of lines) {
        const line = Number(/^\{"line":(\d+)/.exec(text)?.[1] ?? Infinity);
        if (line <= checkpointLine && !out.write(`${text}\n`)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
      renameSync(temp, path);
    } catch (err) {
      rmSync(temp, { force: true });
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new RejectsWriter(path, true);
  }

  add(line: number, kind: RejectKind, text: string): void {
    const entry = text.length > MAX_TEXT ? { line, kind, text: text.slice(0, MAX_TEXT), clipped: true } : { line, kind, text };
    this.pending += `${JSON.stringify(entry)}\n`;
  }

  flush(): void {
    if (!this.pending) return;
    this.fd ??= openSync(this.path, this.append ? 'a' : 'w', PRIVATE_FILE_MODE);
    writeSync(this.fd, this.pending);
    this.pending = '';
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
