import type { Db } from './open.js';
import { quoteIdent } from './schemaInfo.js';
import { embedIndexReady } from './embedIndex.js';
import { embedMatches } from './sweeps.js';
import type { Target } from './target.js';

/**
 * What an audit checks of issue 12's copies and orphans, read-only: rows still stored that a deletion should have taken
 * or changed, judged against the tombstones (cs_tombstones), so it holds whatever wrote the store since.
 *
 * - copies: rows of a `copy` relation (a retweet's pointer column) referencing a tombstoned row;
 * - dependents: rows of a `delete` relation referencing a tombstoned row;
 * - pointers: `set_null`/`set_default` references (a quote pointer) still holding a tombstoned ID;
 * - embedded: rows whose JSON embeds a tombstoned tweet (target.embeds: a retweet's or quote's embedded copy, an
 *   expansion) — through the index cs_embeds when it is complete, else one pass over the tweets table;
 * - orphans: rows of an orphan table (target.orphans) that nothing references. Unlike the sweep, which deletes only
 *   rows whose references a batch removed, this counts every unreferenced row, those never linked included.
 */
export interface ResidueClass {
  count: number;
  /** Up to EXAMPLES lines naming the row and what it still refers to. */
  examples: string[];
}

export interface CopyResidue {
  copies: ResidueClass;
  dependents: ResidueClass;
  pointers: ResidueClass;
  embedded: ResidueClass;
  orphans: ResidueClass;
}

const EXAMPLES = 5;

function collect(db: Db, into: ResidueClass, sql: string, describe: (row: Record<string, unknown>) => string): void {
  for (const row of db.prepare(sql).safeIntegers(true).iterate() as Iterable<Record<string, unknown>>) {
    into.count++;
    if (into.examples.length < EXAMPLES) into.examples.push(describe(row));
  }
}

/** Counts each class of copy and orphan residue in the store (see CopyResidue). Needs the ledger's cs_tombstones. */
export function countCopyResidue(db: Db, target: Target): CopyResidue {
  const empty = (): ResidueClass => ({ count: 0, examples: [] });
  const out: CopyResidue = { copies: empty(), dependents: empty(), pointers: empty(), embedded: empty(), orphans: empty() };
  for (const parent of [target.tweets, target.users]) {
    for (const r of target.relations.get(parent.table.toLowerCase()) ?? []) {
      const into = r.action === 'copy' ? out.copies : r.action === 'delete' ? out.dependents : out.pointers;
      collect(
        db,
        into,
        `SELECT c.rowid AS row, c.${quoteIdent(r.childColumn)} AS ref FROM cs_tombstones t JOIN ${quoteIdent(r.childTable)} c ON c.${quoteIdent(r.childColumn)} = t.id WHERE t.type = '${parent.type}'`,
        (row) => `${r.childTable}.${r.childColumn} = ${String(row.ref)} (rowid ${String(row.row)}): a deleted ${parent.type === 'tweets' ? 'tweet' : 'user'}`,
      );
    }
  }
  const tw = target.tweets;
  if (target.embeds.length) {
    const sql = embedIndexReady(db, target)
      ? `SELECT x.tweet_id AS id, x.embedded_id AS embedded FROM cs_embeds x JOIN ${quoteIdent(tw.table)} s ON s.${quoteIdent(tw.id)} = x.tweet_id
         WHERE EXISTS (SELECT 1 FROM cs_tombstones t WHERE t.type = 'tweets' AND t.id = x.embedded_id)`
      : `SELECT ${quoteIdent(tw.id)} AS id, NULL AS embedded FROM ${quoteIdent(tw.table)} WHERE ${target.embeds.map((rule) => embedMatches(rule, "(SELECT CAST(id AS TEXT) AS id FROM cs_tombstones WHERE type = 'tweets')")).join(' OR ')}`;
    collect(db, out.embedded, sql, (row) => `tweet ${String(row.id)} embeds ${row.embedded === null ? 'a deleted tweet' : `deleted tweet ${String(row.embedded)}`}`);
  }
  for (const o of target.orphans) {
    const unreferenced = o.referencedBy.map((r) => `NOT EXISTS (SELECT 1 FROM ${quoteIdent(r.table)} r WHERE r.${quoteIdent(r.column)} = o.${quoteIdent(o.key)})`).join(' AND ');
    collect(db, out.orphans, `SELECT o.${quoteIdent(o.key)} AS k FROM ${quoteIdent(o.table)} o WHERE ${unreferenced}`, (row) => `${o.table}.${o.key} = ${String(row.k)}: nothing references it`);
  }
  return out;
}
