// Preloaded with `node --import` into the CLI: replaces the page cache a writing connection opens with
// (`cache_size` in src/store/open.ts) by $CACHE_SIZE (SQLite's unit: a negative number is KiB), so that two cache
// sizes can be compared on the same build, alternating:
//
//   CACHE_SIZE=-2000 node --import ./bench/lib/cache-size.mjs dist/cli.js apply …   # SQLite's default, 2 MB
//   node dist/cli.js apply …                                                        # as shipped
import { createRequire } from 'node:module';

const size = process.env.CACHE_SIZE;
if (size) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const pragma = Database.prototype.pragma;
  Database.prototype.pragma = function (source, options) {
    return pragma.call(this, source.startsWith('cache_size = ') ? `cache_size = ${size}` : source, options);
  };
}
