import { randomInt } from 'node:crypto';
import type { Id } from '../types.js';
import type { ChangeCounter } from './changeCounts.js';
import { embedIndexReady } from './embedIndex.js';
import type { Db } from './open.js';
import { quoteIdent, quoteLiteral, SchemaInfo } from './schemaInfo.js';
import type { EmbedRule, IdEncoding, OrphanRule, Target } from './target.js';

/**
 * What a transaction's deletions and geo scrubs leave behind, acted on at its end, in it (issue 12):
 *
 * - Embedded copies. A tweet's raw JSON can carry other tweets (v1.1 retweeted_status/quoted_status, v2
 *   referenced_tweets/includes.tweets, target.embeds). A row that is a copy of a deleted tweet (a retweet) is deleted
 *   as a tweet of its own (tombstone `copy_<reason>`, its dependents); an embedded object of a deleted tweet is
 *   removed; an embedded object of a geo-scrubbed tweet loses its geo.
 * - Orphans. Rows of target.orphans tables whose references this transaction removed, and that nothing references
 *   any more, are deleted.
 *
 * Which tweets went is told by a TEMP trigger (on this connection only, never in the store file) that notes every
 * deleted tweet's ID: the result's own, a user's cascaded tweets, pointer copies. The rows that embed them are looked
 * up in cs_embeds (src/store/embedIndex.ts) by index; only while that index is not complete (a dry run before the
 * first apply) are they found by one pass over the tweets table per transaction, never per result line. The orphan
 * sweep looks only at the keys the transaction's deletes and updates removed, each by index.
 *
 * The embedded-copies sweep is cut by time (issue 15): one tweet can be embedded by thousands of rows (a viral tweet's
 * retweets kept as raw JSON), each a copy deleted with its tombstone and dependents. Given the transaction's `stop`, it
 * stops after the row (or ID) under way once that says so, and what it has not done yet is committed with the
 * transaction in the ledger (cs_sweep_pending: the IDs with their reasons; cs_sweep_state: where it stopped); the
 * next transaction that sweeps goes on from there. The orphan sweep is not cut: it is bounded by the keys the
 * transaction touched.
 */
export interface Sweeps {
  /** A tweet was geo-scrubbed in this transaction (its embedded copies lose their geo at the sweep). */
  scrubbed(id: Id): void;
  /** The tweets of an author were geo-scrubbed in this transaction. */
  scrubbedByAuthor(author: Id): void;
  /**
   * Runs the sweeps over what this transaction did and what an earlier one left pending, then forgets it. With `stop`,
   * the embedded-copies sweep stops after the row or ID under way once it says so (one at least) and commits the rest as
   * pending. Returns false when something is left pending.
   */
  run(at: string, stop?: () => boolean): boolean;
  /** Whether a cut sweep is pending in the store (left by this connection or another, before a crash too). */
  pending(): boolean;
}

/** What a geo scrub removes from an embedded copy of the scrubbed tweet (and what the audit looks for there). */
export const EMBEDDED_GEO_KEYS = ['geo', 'coordinates', 'place'];

export function prepareSweeps(
  db: Db,
  target: Target,
  counter: ChangeCounter,
  options: {
    /** Deletes one tweet as a copy (its tombstone's reason is copy_<reason>, its dependents first). */
    deleteCopy: (id: Id, reason: string, at: string) => void;
    /** Whether cs_tombstones is written (false: a dry run on a store that may have no ledger yet). */
    tombstones: boolean;
  },
): Sweeps | null {
  // The temp schema, not the store's: SchemaInfo reads the main schema only, and these triggers are this connection's.
  for (const name of db.prepare("SELECT name FROM temp.sqlite_master WHERE type = 'trigger' AND name LIKE 'cs\\_sweep\\_%' ESCAPE '\\'").pluck().all() as string[]) {
    db.exec(`DROP TRIGGER temp.${quoteIdent(name)}`);
  }
  const embeds = prepareEmbedSweep(db, target, counter, options);
  const orphans = prepareOrphanSweep(db, target.orphans, counter);
  if (!embeds && !orphans) return null;
  return {
    scrubbed: (id) => embeds?.scrubbed(id),
    scrubbedByAuthor: (author) => embeds?.scrubbedByAuthor(author),
    run: (at, stop) => {
      const done = embeds?.run(at, stop) ?? true;
      // After the copies this transaction deleted: their media and places go with them.
      orphans?.run();
      return done;
    },
    pending: () => embeds?.pending() ?? false,
  };
}

/** Rows (or pending IDs) read per query of the indexed sweep: a cut sweep reads little further than it gets. */
const SWEEP_PAGE = 256;

/** Where a sweep is: every ID of the sets before (`kind`, `id`) is done; of `id`, the rows up to `row` (null: all). */
interface SweepCursor {
  kind: 'gone' | 'scrubbed';
  id: string;
  row: bigint | string | null;
}

function prepareEmbedSweep(db: Db, target: Target, counter: ChangeCounter, options: { deleteCopy: (id: Id, reason: string, at: string) => void; tombstones: boolean }) {
  const rules = target.embeds;
  if (!rules.length) return null;
  const tw = target.tweets;
  const table = quoteIdent(tw.table);
  const id = quoteIdent(tw.id);
  // Noted by this transaction (the trigger, scrubbed()); and the sets a sweep works on, with what an earlier
  // transaction left pending. The tweets a sweep deletes itself (copies, their
  // dependents) are noted too and dropped: one level, as for pointer copies. TEMP tables are in the transaction: a
  // rollback takes back what it put in them.
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_gone_tweets (id TEXT PRIMARY KEY, reason TEXT NOT NULL)');
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_scrubbed_tweets (id TEXT PRIMARY KEY)');
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_sweeping_gone (id TEXT PRIMARY KEY, reason TEXT NOT NULL)');
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_sweeping_scrubbed (id TEXT PRIMARY KEY)');
  // The ledger's generation (cs_sweep_state) the sets above hold while a sweep is pending: loaded once per connection.
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_sweeping_of (generation INTEGER NOT NULL)');
  const forgetNoted = 'DELETE FROM temp.cs_gone_tweets; DELETE FROM temp.cs_scrubbed_tweets';
  const forgetSweeping = 'DELETE FROM temp.cs_sweeping_gone; DELETE FROM temp.cs_sweeping_scrubbed; DELETE FROM temp.cs_sweeping_of';
  db.exec(`${forgetNoted}; ${forgetSweeping}`);
  // The deleted tweet's tombstone (written just before its DELETE) gives the reason its copies' tombstones repeat.
  const reason = options.tombstones
    ? `coalesce((SELECT reason FROM main.cs_tombstones WHERE type = 'tweets' AND id = old.${id}), 'deleted')`
    : "'deleted'";
  db.exec(
    `CREATE TEMP TRIGGER cs_sweep_gone AFTER DELETE ON main.${table} BEGIN
       INSERT OR IGNORE INTO temp.cs_gone_tweets (id, reason) VALUES (CAST(old.${id} AS TEXT), ${reason}); END`,
  );
  const bindId = bindFor(tw.idEncoding);
  const noteScrubbed = db.prepare('INSERT OR IGNORE INTO temp.cs_scrubbed_tweets (id) VALUES (?)');
  const noteScrubbedByAuthor = target.authorId
    ? db.prepare(`INSERT OR IGNORE INTO temp.cs_scrubbed_tweets (id) SELECT CAST(${id} AS TEXT) FROM ${table} WHERE ${quoteIdent(target.authorId)} = ?`)
    : null;
  const bindAuthor = bindFor(target.authorEncoding);
  const noted = db.prepare('SELECT (SELECT count(*) FROM temp.cs_gone_tweets) + (SELECT count(*) FROM temp.cs_scrubbed_tweets)').pluck();
  // Into the sets; `changes` says whether any ID is new to them.
  const takeGone = db.prepare('INSERT OR IGNORE INTO temp.cs_sweeping_gone (id, reason) SELECT id, reason FROM temp.cs_gone_tweets');
  const takeScrubbed = db.prepare('INSERT OR IGNORE INTO temp.cs_sweeping_scrubbed (id) SELECT id FROM temp.cs_scrubbed_tweets');

  const gone = 'temp.cs_sweeping_gone';
  const scrubbed = 'temp.cs_sweeping_scrubbed';
  const sets = { gone, scrubbed } as const;
  // By index: the sets' IDs in order, and the rows embedding each in ID order, a page at a time, from the cursor on.
  // Without it (a dry run before the first apply, never cut) one pass over the table finds them all.
  const indexed = embedIndexReady(db, target);
  const idsAfter = Object.fromEntries(
    (['gone', 'scrubbed'] as const).map((kind) => [kind, db.prepare(`SELECT id FROM ${sets[kind]} WHERE @after IS NULL OR id > @after ORDER BY id LIMIT ${SWEEP_PAGE}`).pluck()]),
  ) as Record<SweepCursor['kind'], ReturnType<Db['prepare']>>;
  const rowsOf = db.prepare(`SELECT tweet_id FROM cs_embeds WHERE embedded_id = ? ORDER BY tweet_id LIMIT ${SWEEP_PAGE}`).pluck().safeIntegers(true);
  const rowsAfter = db.prepare(`SELECT tweet_id FROM cs_embeds WHERE embedded_id = ? AND tweet_id > ? ORDER BY tweet_id LIMIT ${SWEEP_PAGE}`).pluck().safeIntegers(true);
  // Rows that hold none of the rules' keys in their text are skipped before any JSON is parsed.
  const columns = [...new Set(rules.map((r) => r.column))];
  const prefilter = columns
    .map((c) => `(${[...new Set(rules.filter((r) => r.column === c).map((r) => lastKey(r.path)))].map((k) => `instr(${quoteIdent(c)}, ${quoteLiteral(`"${k}"`)}) > 0`).join(' OR ')})`)
    .join(' OR ');
  const anyMatch = rules.flatMap((r) => [matches(r, gone), matches(r, scrubbed)]).join(' OR ');
  const scan = indexed ? null : db.prepare(`SELECT ${id} AS id FROM ${table} WHERE (${prefilter}) AND (${anyMatch})`).pluck().safeIntegers(true);

  const copyRules = rules.filter((r) => r.action === 'copy');
  const copyOf = copyRules.length ? db.prepare(`SELECT coalesce(${copyRules.map((r) => reasonOf(r, gone)).join(', ')}) FROM ${table} WHERE ${id} = ?`).pluck() : null;
  const removeRules = rules.filter((r) => r.action === 'remove');
  // A retweet of a scrubbed tweet is kept, and so is the original's geo it embeds: that goes as from a quote.
  const edits = [...removeRules.map((r) => removeStatement(db, table, id, r, gone)), ...rules.map((r) => scrubStatement(db, table, id, r, scrubbed))];
  const cell = counter.cell(tw.table, 'embed', 'updated');
  /** Deletes the row as a copy, or removes (or scrubs) what it embeds; a row handled already matches nothing. */
  const sweepRow = (row: Id, at: string) => {
    const reason = copyOf?.get(bindId(row)) as string | null | undefined;
    if (reason) {
      options.deleteCopy(row, reason, at);
      return;
    }
    let changed = false;
    for (const edit of edits) {
      // One embedded object per statement (array elements shift as one is removed): repeated until none is left.
      for (let i = 0; i < 64 && edit.run(bindId(row)).changes > 0; i++) changed = true;
    }
    if (changed) counter.add(cell, 1);
  };

  /**
   * Goes through the sets from `from` (null: the start): each ID's rows, then the next ID. After each row and each
   * ID, `stop()` is asked; returns where it stopped, or null when every row is done.
   */
  const sweepFrom = (from: SweepCursor | null, at: string, stop: () => boolean): SweepCursor | null => {
    const kinds = (['gone', 'scrubbed'] as const).filter((kind) => from === null || kind === from.kind || (from.kind === 'gone' && kind === 'scrubbed'));
    for (const kind of kinds) {
      const start = from?.kind === kind ? from : null;
      /** The rows of `key` after `row`; returns the cursor when stopped. */
      const rowsFrom = (key: string, row: bigint | string | null): SweepCursor | null => {
        for (let after = row; ; ) {
          const rows = (after === null ? rowsOf.all(key) : rowsAfter.all(key, after)) as (bigint | string)[];
          for (const r of rows) {
            sweepRow(String(r) as Id, at);
            after = r;
            if (stop()) return { kind, id: key, row: r };
          }
          if (rows.length < SWEEP_PAGE) return null;
        }
      };
      if (start && start.row !== null) {
        const stopped = rowsFrom(start.id, start.row);
        if (stopped) return stopped;
        if (stop()) return { kind, id: start.id, row: null };
      }
      for (let after: string | null = start?.id ?? null; ; ) {
        const keys = idsAfter[kind].all({ after }) as string[];
        for (const key of keys) {
          const stopped = rowsFrom(key, null);
          if (stopped) return stopped;
          after = key;
          if (stop()) return { kind, id: key, row: null };
        }
        if (keys.length < SWEEP_PAGE) break;
      }
    }
    return null;
  };

  // What is left when the time is up (a dry run has no ledger to leave it in, and is never cut; nor is the pass over
  // the table, which has no order to go on from).
  const ledger = options.tombstones && indexed && new SchemaInfo(db).table('cs_sweep_state') !== undefined ? prepareSweepLedger(db, gone, scrubbed) : null;
  const never = () => false;

  return {
    scrubbed: (key: Id) => void noteScrubbed.run(key),
    scrubbedByAuthor: (author: Id) => void noteScrubbedByAuthor?.run(bindAuthor(author)),
    pending: () => ledger?.state() !== undefined,
    run: (at: string, stop?: () => boolean): boolean => {
      const state = ledger?.state();
      // Sets held for a sweep another connection has finished since are dropped.
      if (state === undefined) ledger?.release();
      if (Number(noted.get()) === 0 && state === undefined) return true;
      if (state !== undefined) ledger!.hold(state.generation);
      const grew = takeGone.run().changes + takeScrubbed.run().changes > 0;
      db.exec(forgetNoted);
      if (!scan) {
        // A pending sweep goes on where it stopped, unless this transaction noted IDs it did not have: their rows may
        // lie before that, so it starts over (rows handled already match nothing).
        const from = state !== undefined && !grew ? state.cursor : null;
        const stopped = sweepFrom(from, at, ledger && stop ? stop : never);
        // The copies deleted here noted their own IDs: one level, they are not swept in turn.
        db.exec(forgetNoted);
        if (stopped) {
          // A new sweep's generation is drawn, not counted from 0: the ledger forgets the last one when a sweep ends, and
          // a connection still holding an earlier sweep's sets at a reused generation would go on with them.
          ledger!.save(stopped, state?.generation ?? BigInt(randomInt(2 ** 47)), grew);
          return false;
        }
        if (state !== undefined) ledger!.clear();
      } else {
        for (const row of scan.all() as (bigint | string)[]) sweepRow(String(row) as Id, at);
        db.exec(forgetNoted);
      }
      db.exec(forgetSweeping);
      return true;
    },
  };
}

/**
 * The pending sweep in the ledger (migrations/0009_sweep_pending.sql): saved with the transaction that was cut (its new
 * IDs only, and where it stopped), loaded once per connection by the next one that sweeps (the TEMP sets then go on
 * from one transaction to the next), cleared by the one that finds no row left. Each save moves the generation on,
 * so sets loaded at an earlier one are loaded again.
 */
function prepareSweepLedger(db: Db, gone: string, scrubbed: string) {
  const state = db.prepare('SELECT generation, kind, swept_id, swept_to FROM main.cs_sweep_state WHERE id = 1').safeIntegers(true);
  const heldGeneration = db.prepare('SELECT generation FROM temp.cs_sweeping_of').pluck().safeIntegers(true);
  const loadGone = db.prepare(`INSERT INTO ${gone} (id, reason) SELECT id, coalesce(reason, 'deleted') FROM main.cs_sweep_pending WHERE kind = 'gone'`);
  const loadScrubbed = db.prepare(`INSERT INTO ${scrubbed} (id) SELECT id FROM main.cs_sweep_pending WHERE kind = 'scrubbed'`);
  const saveGone = db.prepare(`INSERT OR IGNORE INTO main.cs_sweep_pending (kind, id, reason) SELECT 'gone', id, reason FROM ${gone}`);
  const saveScrubbed = db.prepare(`INSERT OR IGNORE INTO main.cs_sweep_pending (kind, id, reason) SELECT 'scrubbed', id, NULL FROM ${scrubbed}`);
  const saveState = db.prepare(
    `INSERT INTO main.cs_sweep_state (id, generation, kind, swept_id, swept_to) VALUES (1, @generation, @kind, @id, @row)
     ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, kind = excluded.kind, swept_id = excluded.swept_id, swept_to = excluded.swept_to`,
  );
  const setHeld = db.prepare('INSERT INTO temp.cs_sweeping_of (generation) VALUES (?)');
  const forget = `DELETE FROM ${gone}; DELETE FROM ${scrubbed}; DELETE FROM temp.cs_sweeping_of`;
  return {
    state: (): { generation: bigint; cursor: SweepCursor } | undefined => {
      const row = state.get() as { generation: bigint; kind: SweepCursor['kind']; swept_id: string; swept_to: bigint | string | null } | undefined;
      return row && { generation: row.generation, cursor: { kind: row.kind, id: row.swept_id, row: row.swept_to } };
    },
    /** Makes the TEMP sets hold the pending IDs of this generation (loaded unless they do already). */
    hold: (generation: bigint) => {
      if (heldGeneration.get() === generation) return;
      db.exec(forget);
      loadGone.run();
      loadScrubbed.run();
      setHeld.run(generation);
    },
    /**
     * Commits with the transaction where the sweep stopped and, when the sets took IDs the ledger does not have
     * (`fresh`: a transaction that noted some), the sets: those already there are skipped.
     */
    save: (cursor: SweepCursor, generation: bigint | number, fresh: boolean) => {
      if (fresh) {
        saveGone.run();
        saveScrubbed.run();
      }
      const next = BigInt(generation) + 1n;
      saveState.run({ generation: next, kind: cursor.kind, id: cursor.id, row: cursor.row });
      db.exec('DELETE FROM temp.cs_sweeping_of');
      setHeld.run(next);
    },
    /** Empties the TEMP sets if they hold a generation (no sweep is pending any more). */
    release: () => {
      if (heldGeneration.get() !== undefined) db.exec(forget);
    },
    clear: () => db.exec('DELETE FROM main.cs_sweep_pending; DELETE FROM main.cs_sweep_state'),
  };
}

const bindFor = (encoding: IdEncoding) => (encoding === 'number' ? (key: Id) => BigInt(key) : (key: Id) => key);

/** The last key of a JSON path ($.includes.tweets → tweets): a row whose text lacks it cannot hold the embed. */
export function lastKey(path: string): string {
  const keys = path.match(/\.([A-Za-z_][A-Za-z0-9_]*)/g) ?? [];
  return keys[keys.length - 1]!.slice(1);
}

/** SQL true when an array element (json_each row `e`) is an embedded tweet of the rule whose ID is in `set`. */
function elementIn(rule: EmbedRule, set: string): string {
  const typed = rule.type === null ? '' : ` AND json_extract(e.value, '$.type') = ${quoteLiteral(rule.type)}`;
  return `e.type = 'object' AND json_extract(e.value, ${quoteLiteral(`$.${rule.idKey}`)}) IN (SELECT id FROM ${set})${typed}`;
}

/** SQL true when the row embeds, by this rule, a tweet whose ID is in `set` (false for text that is not JSON). */
export function embedMatches(rule: EmbedRule, set: string): string {
  return matches(rule, set);
}

function matches(rule: EmbedRule, set: string): string {
  const col = quoteIdent(rule.column);
  const test = rule.array
    ? `EXISTS (SELECT 1 FROM json_each(${col}, ${quoteLiteral(rule.path)}) e WHERE ${elementIn(rule, set)})`
    : `json_extract(${col}, ${quoteLiteral(`${rule.path}.${rule.idKey}`)}) IN (SELECT id FROM ${set})`;
  return `CASE WHEN json_valid(${col}) THEN ${test} ELSE 0 END`;
}

/** SQL: the reason of the deleted tweet this row is a copy of by this rule, or NULL. */
function reasonOf(rule: EmbedRule, set: string): string {
  const col = quoteIdent(rule.column);
  const test = rule.array
    ? `(SELECT g.reason FROM json_each(${col}, ${quoteLiteral(rule.path)}) e JOIN ${set} g ON g.id = json_extract(e.value, ${quoteLiteral(`$.${rule.idKey}`)}) WHERE ${elementIn(rule, set)} LIMIT 1)`
    : `(SELECT g.reason FROM ${set} g WHERE g.id = json_extract(${col}, ${quoteLiteral(`${rule.path}.${rule.idKey}`)}))`;
  return `CASE WHEN json_valid(${col}) THEN ${test} END`;
}

/** The JSON path of the first embedded object of this rule whose ID is in `set` and that still has `also` (SQL). */
function firstPath(rule: EmbedRule, set: string, also = ''): string {
  const col = quoteIdent(rule.column);
  if (!rule.array) return quoteLiteral(rule.path);
  return `(SELECT e.fullkey FROM json_each(${col}, ${quoteLiteral(rule.path)}) e WHERE ${elementIn(rule, set)}${also ? ` AND ${also}` : ''} LIMIT 1)`;
}

/** Removes one embedded object of a deleted tweet from a row (by ID). */
function removeStatement(db: Db, table: string, id: string, rule: EmbedRule, set: string) {
  const col = quoteIdent(rule.column);
  // v1.1 points at an embedded tweet beside it too (quoted_status_id_str, quoted_status_id, quoted_status_permalink
  // with the tweet's URL): the pointer goes with the copy. Removing a path that is not there changes nothing.
  const pointers = rule.array ? [] : POINTER_SUFFIXES.map((suffix) => quoteLiteral(`${rule.path}${suffix}`));
  return db.prepare(`UPDATE ${table} SET ${col} = json_remove(${[col, firstPath(rule, set), ...pointers].join(', ')}) WHERE ${id} = ? AND ${matches(rule, set)}`);
}

const POINTER_SUFFIXES = ['_id_str', '_id', '_permalink'];

/** Removes the geo of one embedded object of a scrubbed tweet that still has some (by ID). */
function scrubStatement(db: Db, table: string, id: string, rule: EmbedRule, set: string) {
  const col = quoteIdent(rule.column);
  const hasGeo = (object: string) => `(${EMBEDDED_GEO_KEYS.map((k) => `json_type(${object}, '$.${k}') IS NOT NULL`).join(' OR ')})`;
  if (rule.array) {
    const path = firstPath(rule, set, hasGeo('e.value'));
    return db.prepare(
      `UPDATE ${table} SET ${col} = json_remove(${col}, ${EMBEDDED_GEO_KEYS.map((k) => `${path} || '.${k}'`).join(', ')})
       WHERE ${id} = ? AND CASE WHEN json_valid(${col}) THEN EXISTS (SELECT 1 FROM json_each(${col}, ${quoteLiteral(rule.path)}) e WHERE ${elementIn(rule, set)} AND ${hasGeo('e.value')}) ELSE 0 END`,
    );
  }
  const embedded = `json_extract(${col}, ${quoteLiteral(rule.path)})`;
  return db.prepare(
    `UPDATE ${table} SET ${col} = json_remove(${col}, ${EMBEDDED_GEO_KEYS.map((k) => quoteLiteral(`${rule.path}.${k}`)).join(', ')})
     WHERE ${id} = ? AND ${matches(rule, set)} AND json_type(${col}, ${quoteLiteral(rule.path)}) = 'object' AND ${hasGeo(embedded)}`,
  );
}

/**
 * The orphan sweep: TEMP triggers note the keys that deletes and updates of the referencing columns remove; at the
 * end of the transaction, the rows of those keys that nothing references any more are deleted, each probe by the
 * referencing column's index (check-config --store names a missing one). Bounded by what the transaction touched.
 */
function prepareOrphanSweep(db: Db, rules: readonly OrphanRule[], counter: ChangeCounter) {
  if (!rules.length) return null;
  db.exec('CREATE TEMP TABLE IF NOT EXISTS cs_orphan_keys (rule INTEGER NOT NULL, k, PRIMARY KEY (rule, k))');
  db.exec('DELETE FROM temp.cs_orphan_keys');
  const sweeps = rules.map((rule, i) => {
    rule.referencedBy.forEach((ref, j) => {
      const c = quoteIdent(ref.column);
      const note = `INSERT OR IGNORE INTO temp.cs_orphan_keys (rule, k) VALUES (${i}, old.${c});`;
      db.exec(`CREATE TEMP TRIGGER ${quoteIdent(`cs_sweep_orphan_${i}_${j}_d`)} AFTER DELETE ON main.${quoteIdent(ref.table)} WHEN old.${c} IS NOT NULL BEGIN ${note} END`);
      db.exec(`CREATE TEMP TRIGGER ${quoteIdent(`cs_sweep_orphan_${i}_${j}_u`)} AFTER UPDATE OF ${c} ON main.${quoteIdent(ref.table)} WHEN old.${c} IS NOT NULL AND old.${c} IS NOT new.${c} BEGIN ${note} END`);
    });
    const key = quoteIdent(rule.key);
    const unreferenced = rule.referencedBy.map((ref) => `NOT EXISTS (SELECT 1 FROM ${quoteIdent(ref.table)} r WHERE r.${quoteIdent(ref.column)} = o.${key})`).join(' AND ');
    const stmt = db.prepare(`DELETE FROM ${quoteIdent(rule.table)} AS o WHERE o.${key} IN (SELECT k FROM temp.cs_orphan_keys WHERE rule = ${i}) AND ${unreferenced}`);
    const cell = counter.cell(rule.table, 'orphan', 'deleted');
    return () => counter.add(cell, stmt.run().changes);
  });
  const any = db.prepare('SELECT 1 FROM temp.cs_orphan_keys LIMIT 1').pluck();
  return {
    run: () => {
      if (any.get() === undefined) return;
      // In order, once: an orphan's own deletion can leave rows of a later rule unreferenced.
      for (const sweep of sweeps) sweep();
      db.exec('DELETE FROM temp.cs_orphan_keys');
    },
  };
}
