// Preloaded with `node --import` into the CLI (as usage-at-exit.mjs is): where an apply's time goes inside SQLite.
// It wraps better-sqlite3's Statement run/get/all/iterate and Database exec, and at exit writes to
// $SQL_PROFILE_FILE, as text:
// - per SQL text, its calls and the wall time spent in them, the 30 costliest first;
// - the write transactions of the store (BEGIN… to the end of the COMMIT call, `BEGIN IMMEDIATE` waiting for another
//   writer's lock included): how many, p50, p90, the longest, how many over $SQL_PROFILE_BOUND_MS (default 200);
// - the largest size the store's -wal file reached after a COMMIT (the file is reused from its start when SQLite
//   restarts the WAL, so this is the most it ever held), and each transaction's time in turn;
// - the longest transaction and every other one over the bound (at most 5), each with its time in SQL per text (the
//   costliest 8, with the longest call of each) and the rest (JavaScript between the statements, a wait for the checkpoint worker).
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
  /** The open transaction's time per SQL text; kept for the longest and those over the bound. */
  let inside = null;
  const kept = [];
  const tally = (map, sql, ms) => {
    const entry = map.get(sql) ?? { calls: 0, ms: 0, longest: 0 };
    entry.calls++;
    entry.ms += ms;
    entry.longest = Math.max(entry.longest, ms);
    map.set(sql, entry);
  };
  const add = (sql, ms) => {
    tally(bySql, sql, ms);
    if (inside) tally(inside, sql, ms);
  };
  let longest = 0;
  const timed = (sql, db, run) => {
    const start = performance.now();
    if (sql.startsWith('BEGIN')) {
      began = start;
      inside = new Map();
    }
    try {
      return run();
    } finally {
      const end = performance.now();
      add(sql, end - start);
      // Ended by COMMIT or ROLLBACK, or rolled back by SQLite itself (a RAISE(ROLLBACK), an ON CONFLICT ROLLBACK).
      if (began !== null && (sql === 'COMMIT' || sql === 'ROLLBACK' || !db.inTransaction)) {
        const ms = end - began;
        held.push(ms);
        if (ms > bound || ms > longest) kept.push({ n: held.length, ms, bySql: inside });
        longest = Math.max(longest, ms);
        began = null;
        inside = null;
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
      `each transaction in turn, ms: ${held.map((ms) => ms.toFixed(0)).join(' ')}`,
      '',
      ...rows.map(([sql, { calls, ms }]) => `${ms.toFixed(0).padStart(7)} ms ${String(calls).padStart(8)}x  ${sql.replace(/\s+/g, ' ').slice(0, 200)}`),
    ];
    // The longest first, then the next longest over the bound; printed in the order they ran.
    const shown = kept
      .filter((t) => t.ms > bound || t.ms === longest)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .sort((a, b) => a.n - b.n);
    for (const t of shown) {
      const sql = [...t.bySql.entries()].sort((a, b) => b[1].ms - a[1].ms);
      const inSql = sql.reduce((sum, [, e]) => sum + e.ms, 0);
      lines.push('', `transaction ${t.n} of ${held.length}: ${t.ms.toFixed(0)} ms, ${inSql.toFixed(0)} ms of it in SQL, ${(t.ms - inSql).toFixed(0)} ms outside`);
      for (const [text, { calls, ms, longest }] of sql.slice(0, 8)) {
        lines.push(`${ms.toFixed(1).padStart(9)} ms ${String(calls).padStart(6)}x (longest ${longest.toFixed(1)} ms)  ${text.replace(/\s+/g, ' ').slice(0, 140)}`);
      }
    }
    writeFileSync(file, `${lines.join('\n')}\n`);
  });
}
