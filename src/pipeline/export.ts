import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../privateFiles.js';
import type { StoredIds } from '../store/storedIds.js';

const PAGE = 50_000;

/**
 * Writes the IDs of one shard, one decimal ID per line, to `file` (through a temp file and a rename, so a crash never
 * leaves a half file under the real name). Returns how many IDs it wrote. Memory: one page of IDs.
 */
export async function exportShard(ids: StoredIds, range: { firstId: string; lastId: string }, file: string, signal?: AbortSignal): Promise<number> {
  await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  const temp = `${file}.tmp-${process.pid}`;
  const out = createWriteStream(temp, { highWaterMark: 1 << 20, mode: PRIVATE_FILE_MODE });
  const failed = once(out, 'error').then(([err]) => Promise.reject(err as Error));
  failed.catch(() => undefined);
  let written = 0;
  try {
    let after = BigInt(range.firstId) - 1n;
    const last = BigInt(range.lastId);
    for (;;) {
      signal?.throwIfAborted();
      const page = ids.pageAfter(after, last, PAGE);
      if (page.length === 0) break;
      written += page.length;
      after = page[page.length - 1]!;
      if (!out.write(`${page.join('\n')}\n`)) await Promise.race([once(out, 'drain'), failed]);
      if (page.length < PAGE) break;
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
    await rename(temp, file);
    return written;
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  }
}
