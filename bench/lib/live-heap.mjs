// Preloaded with `node --expose-gc --import` into the daemon by bench/soak.mjs. On SIGWINCH (which the daemon does not
// use) it runs a full GC and prints the live heap as a log-like JSON line on stdout, so the soak can tell a leak (live
// heap climbing cycle after cycle) from the heap merely growing between collections (RSS sawtooth).
import { writeSync } from 'node:fs';

process.on('SIGWINCH', () => {
  globalThis.gc?.();
  const { heapUsed } = process.memoryUsage();
  writeSync(1, `${JSON.stringify({ msg: 'bench live heap', liveHeapMb: heapUsed / 2 ** 20 })}\n`);
});
