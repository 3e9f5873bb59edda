import { createReadStream } from 'node:fs';

/**
 * Lines in a file (a last line without its newline counts), read as raw bytes without decoding: an upper bound on
 * the records a results file holds, at disk speed.
 */
export async function countFileLines(file: string): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) lines++;
    if (chunk.length) last = chunk[chunk.length - 1]!;
  }
  return last === 0x0a ? lines : lines + 1;
}
