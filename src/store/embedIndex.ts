import { cutAfterMs, inLockTurn } from './lockPace.js';
import type { Db } from './open.js';
import { quoteIdent, quoteLiteral, SchemaInfo } from './schemaInfo.js';
import { lastKey } from './sweeps.js';
import type { EmbedRule, Target } from './target.js';

/**
 * The index of embedded tweets (table cs_embeds: embedded ID → the tweet that carries it), so that a deletion or geo
 * scrub finds the rows carrying a copy of the tweet by index. A JSON column cannot be indexed by the IDs inside its
 * arrays, and the pass over the table that would otherwise be needed measured seconds per transaction on 200,000
 * rows (bench/embeds.mjs), far over reconcile.maxLockMs. Triggers on the mapped tweets table (cs_embeds_*) keep it
 * in step with every write, the ingester's included; the rows stored before the triggers existed are filled in once,
 * in ID order, in transactions of a bounded number of rows.
 */

export const EMBED_TRIGGER_PREFIX = 'cs_embeds_';
/** Rows filled in per transaction: a few milliseconds each. */
const FILL_ROWS = 2_000;

/**
 * SQL selecting (e, tid): the IDs rows embed by the rules, and the row's ID. `row` is NEW in a trigger; else the rows of
 * the table `t` that `where` picks.
 */
function embeddedPairs(rules: readonly EmbedRule[], id: string, row: { trigger: true } | { table: string; where: string }): string {
  const alias = 'trigger' in row ? 'NEW' : 't';
  const from = 'trigger' in row ? '' : ` FROM ${row.table} t`;
  const where = 'trigger' in row ? [] : [row.where];
  return rules
    .map((r) => {
      const col = `${alias}.${quoteIdent(r.column)}`;
      const json = `CASE WHEN json_valid(${col}) THEN ${col} END`;
      // Text without the rule's last key cannot hold the embed: no JSON is parsed for it (most rows).
      const hasKey = `instr(${col}, ${quoteLiteral(`"${lastKey(r.path)}"`)}) > 0`;
      if (!r.array) {
        const conditions = ` WHERE ${[...where, hasKey].join(' AND ')}`;
        return `SELECT json_extract(${json}, ${quoteLiteral(`${r.path}.${r.idKey}`)}) AS e, ${alias}.${id} AS tid${from}${conditions}`;
      }
      const typed = r.type === null ? [] : [`json_extract(j.value, '$.type') = ${quoteLiteral(r.type)}`];
      const each = `json_each(${json}, ${quoteLiteral(r.path)}) j`;
      return `SELECT json_extract(j.value, ${quoteLiteral(`$.${r.idKey}`)}) AS e, ${alias}.${id} AS tid${from ? `${from}, ${each}` : ` FROM ${each}`} WHERE ${[...where, hasKey, "j.type = 'object'", ...typed].join(' AND ')}`;
    })
    .join(' UNION ALL ');
}

/**
 * Never a conflict, whatever conflict policy the ingester's statement imposes on the triggers it fires (SQLite lets the
 * outer statement's OR … clause override the trigger's): the pairs are distinct (a v2 retweet names its original in
 * referenced_tweets and in includes.tweets) and those already there are left out.
 */
const insertPairs = (pairs: string) =>
  `INSERT OR IGNORE INTO cs_embeds (embedded_id, tweet_id) SELECT DISTINCT CAST(e AS TEXT), tid FROM (${pairs}) p
   WHERE e IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cs_embeds x WHERE x.embedded_id = CAST(p.e AS TEXT) AND x.tweet_id = +p.tid)`;

/**
 * tweet_id has no declared type (it holds the ID as the tweets table does, INTEGER or TEXT): compared with OLD.id, whose
 * column affinity would convert tweet_id and keep the index out, so the ID is compared as +OLD.id (no affinity).
 */
function wantedTriggers(target: Target): Map<string, string> {
  const tw = target.tweets;
  const table = quoteIdent(tw.table);
  const id = quoteIdent(tw.id);
  const rules = target.embeds;
  const columns = [...new Set(rules.map((r) => r.column))];
  const add = () => `${insertPairs(embeddedPairs(rules, id, { trigger: true }))};`;
  const name = (suffix: string) => `${EMBED_TRIGGER_PREFIX}${tw.table}_${suffix}`;
  return new Map([
    [name('insert'), `CREATE TRIGGER ${quoteIdent(name('insert'))} AFTER INSERT ON ${table} BEGIN ${add()} END`],
    [
      name('update'),
      `CREATE TRIGGER ${quoteIdent(name('update'))} AFTER UPDATE OF ${[id, ...columns.map(quoteIdent)].join(', ')} ON ${table} BEGIN DELETE FROM cs_embeds WHERE tweet_id = +OLD.${id}; ${add()} END`,
    ],
    [name('delete'), `CREATE TRIGGER ${quoteIdent(name('delete'))} AFTER DELETE ON ${table} BEGIN DELETE FROM cs_embeds WHERE tweet_id = +OLD.${id}; END`],
  ]);
}

/** What the index is made for: a change of table, ID column or rules makes it again. */
function signature(target: Target): string {
  return JSON.stringify({ table: target.tweets.table, id: target.tweets.id, rules: target.embeds });
}

const hasLedgerTables = (db: Db) => new SchemaInfo(db).table('cs_embeds_state') !== undefined;

/** Whether cs_embeds is complete for these rules, so a sweep may look embedding rows up in it (read-only). */
export function embedIndexReady(db: Db, target: Target): boolean {
  if (!target.embeds.length || !hasLedgerTables(db)) return false;
  const state = db.prepare('SELECT rules, complete FROM cs_embeds_state WHERE id = 1').get() as { rules: string; complete: number | bigint } | undefined;
  return state !== undefined && state.rules === signature(target) && Number(state.complete) === 1;
}

/**
 * Installs (or replaces, when the mapping changed) the triggers, then fills in the rows stored before them, in
 * transactions of FILL_ROWS rows; drops everything when no embeds are mapped. Cheap when the index is complete.
 * Returns the rows filled in by this call.
 */
export async function ensureEmbedIndex(
  db: Db,
  target: Target,
  options: { maxLockMs: number; onProgress?: (filled: number) => void; clock?: () => number } = { maxLockMs: Infinity },
): Promise<number> {
  const existing = new SchemaInfo(db).triggers().filter((trigger) => trigger.name.startsWith(EMBED_TRIGGER_PREFIX));
  if (!target.embeds.length) {
    if (existing.length) {
      db.transaction(() => {
        for (const e of existing) db.exec(`DROP TRIGGER ${quoteIdent(e.name)}`);
        db.exec('DELETE FROM cs_embeds; DELETE FROM cs_embeds_state');
      }).immediate();
    }
    return 0;
  }
  const wanted = wantedTriggers(target);
  const sig = signature(target);
  const state = db.prepare('SELECT rules, filled_to, complete FROM cs_embeds_state WHERE id = 1').safeIntegers(true).get() as
    | { rules: string; filled_to: unknown; complete: bigint }
    | undefined;
  const triggersCurrent = existing.length === wanted.size && existing.every((e) => wanted.get(e.name) === e.sql);
  if (!state || state.rules !== sig || !triggersCurrent) {
    db.transaction(() => {
      for (const e of existing) db.exec(`DROP TRIGGER ${quoteIdent(e.name)}`);
      db.exec('DELETE FROM cs_embeds');
      for (const sql of wanted.values()) db.exec(sql);
      db.prepare('INSERT OR REPLACE INTO cs_embeds_state (id, rules, filled_to, complete) VALUES (1, ?, NULL, 0)').run(sig);
    }).immediate();
  } else if (state.complete === 1n) return 0;

  const tw = target.tweets;
  const table = quoteIdent(tw.table);
  const id = quoteIdent(tw.id);
  const chunk = db.prepare(`SELECT ${id} FROM ${table} WHERE ${id} > @from ORDER BY ${id} LIMIT @rows`).pluck().safeIntegers(true);
  const fill = db.prepare(insertPairs(embeddedPairs(target.embeds, id, { table, where: `t.${id} > @from AND t.${id} <= @to` })));
  const progress = db.prepare('UPDATE cs_embeds_state SET filled_to = ?, complete = ? WHERE id = 1');
  const readFrom = db.prepare('SELECT filled_to FROM cs_embeds_state WHERE id = 1').pluck().safeIntegers(true);
  // Filling a large store takes many transactions: each is sized to reconcile.maxLockMs (rows halved when one took
  // longer than the cut, doubled when it took under half of it), with the lock left free and the event loop given a
  // turn between two (lockTurn), as the apply's own transactions are, so an ingester keeps writing meanwhile.
  const clock = options.clock ?? (() => performance.now());
  const cutAfter = cutAfterMs(options.maxLockMs);
  let rows = FILL_ROWS;
  let filled = 0;
  for (;;) {
    let started = 0;
    const done = await inLockTurn(options.maxLockMs, () => {
      started = clock();
      return db
        .transaction(() => {
          // Below every stored ID: SQLite orders every integer before every text, so this works for both encodings.
          const from = (readFrom.get() as unknown) ?? -(2n ** 63n);
          const ids = chunk.all({ from, rows }) as unknown[];
          if (ids.length) fill.run({ from, to: ids[ids.length - 1] });
          filled += ids.length;
          const complete = ids.length < rows;
          progress.run(ids.length ? ids[ids.length - 1] : from, complete ? 1 : 0);
          return complete;
        })
        .immediate();
    });
    if (done) return filled;
    options.onProgress?.(filled);
    const took = clock() - started;
    if (took > cutAfter) rows = Math.max(16, Math.floor(rows / 2));
    else if (took < cutAfter / 2) rows = Math.min(rows * 2, 1 << 16);
  }
}
