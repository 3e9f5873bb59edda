// Preloaded with `node --import` into the CLI (as usage-at-exit.mjs is): where an apply's time goes inside SQLite.
// It wraps better-sqlite3's Statement run/get/all/iterate and Database exec, and at exit writes to
// $SQL_PROFILE_FILE, as text:
// - per SQL text, its calls and the wall time spent in them, the 30 costliest first;
// - the write transactions of the store (BEGIN… to the end of the COMMIT call, `BEGIN IMMEDIATE` waiting for another
//   writer's lock included): how many, p50, p90, the longest, how many over $SQL_PROFILE_BOUND_MS (default 200);
// - the largest size the store's -wal file reached after a COMMIT (the file is reused from its start when SQLite
//   restarts the WAL, so this is the most it ever held).
// Wrapping costs about a microsecond per statement call, which the figures include.
//
//   SQL_PROFILE_FILE=/tmp/profile.txt node --import ./bench/lib/sql-profile.mjs dist/cli.js apply …
import { statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const file = process.env.SQL_PROFILE_FILE;
if (file) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const Statement = Object.getPrototypeOf(new Database(':memory:').prepare('SELECT 1'));
  const bound = Number(process.env.SQL_PROFILE_BOUND_MS ?? 200);
  const bySql = new Map();
  const held = [];
  let walMax = 0;
  let began = null;
  const add = (sql, ms) => {
    const entry = bySql.get(sql) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += ms;
    bySql.set(sql, entry);
  };
  const timed = (sql, db, run) => {
    const start = performance.now();
    if (sql.startsWith('BEGIN')) began = start;
    try {
      return run();
    } finally {
      const end = performance.now();
      add(sql, end - start);
      if ((sql === 'COMMIT' || sql === 'ROLLBACK') && began !== null) {
        held.push(end - began);
        began = null;
        try {
          walMax = Math.max(walMax, statSync(`${db.name}-wal`).size);
        } catch {
          // not in WAL mode, or an in-memory database
        }
      }
    }
  };
  for (const method of ['run', 'get', 'all']) {
    const original = Statement[method];
    Statement[method] = function (...args) {
      return timed(this.source, this.database, () => original.apply(this, args));
    };
  }
  const iterate = Statement.iterate;
  Statement.iterate = function* (...args) {
    const rows = iterate.apply(this, args);
    let ms = 0;
    for (;;) {
      const start = performance.now();
      const next = rows.next();
      ms += performance.now() - start;
      if (next.done) break;
      yield next.value;
    }
    add(this.source, ms);
  };
  // `pragma` runs a statement, already counted; `exec` does not.
  const exec = Database.prototype.exec;
  Database.prototype.exec = function (sql) {
    return timed(`EXEC ${sql}`, this, () => exec.call(this, sql));
  };
  process.on('exit', () => {
    const rows = [...bySql.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30);
    const sorted = [...held].sort((a, b) => a - b);
    const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(0) : '-');
    const lines = [
      `write transactions: ${sorted.length}, p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, longest ${at(1)} ms, over ${bound} ms: ${sorted.filter((ms) => ms > bound).length}`,
      `largest -wal file after a commit: ${(walMax / 1048576).toFixed(1)} MiB`,
      '',
      ...rows.map(([sql, { calls, ms }]) => `${ms.toFixed(0).padStart(7)} ms ${String(calls).padStart(8)}x  ${sql.replace(/\s+/g, ' ').slice(0, 200)}`),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
  });
}
