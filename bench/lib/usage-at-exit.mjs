// Preloaded with `node --import` into a process we do not control (the CLI): writes what that process alone used
// (not the bench, not the emulator) at exit to $BENCH_USAGE_FILE, as JSON: peak RSS in KiB, user and system CPU in ms.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_USAGE_FILE;
if (file) {
  process.on('exit', () => {
    const { maxRSS, userCPUTime, systemCPUTime } = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKiB: maxRSS, userMs: userCPUTime / 1000, systemMs: systemCPUTime / 1000 }));
  });
}
