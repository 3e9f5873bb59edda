// Preloaded with `node --import` into a process we do not control (the CLI): writes its peak RSS (KiB) at exit to
// $BENCH_RSS_FILE, so the figure is of that process alone, not of the bench or the emulator.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
