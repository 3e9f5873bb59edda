import type { Db } from './open.js';
import { quoteIdent, quoteLiteral } from './schemaInfo.js';
import { embedIndexReady } from './embedIndex.js';
import { EMBEDDED_GEO_KEYS, embedMatches } from './sweeps.js';
import type { JobType } from '../types.js';
import type { IdEncoding, OrphanRule, Relation, Target } from './target.js';

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
        stillReferencingSql(r, parent.type, 'c.rowid AS row'),
        (row) => `${r.childTable}.${r.childColumn} = ${String(row.id)} (rowid ${String(row.row)}): a deleted ${parent.type === 'tweets' ? 'tweet' : 'user'}`,
      );
    }
  }
  const embedded = embeddedCopiesSql(db, target);
  if (embedded) collect(db, out.embedded, embedded, (row) => `tweet ${String(row.id)} embeds ${row.embedded === null ? 'a deleted tweet' : `deleted tweet ${String(row.embedded)}`}`);
  for (const o of target.orphans) collect(db, out.orphans, orphansSql(o), (row) => `${o.table}.${o.key} = ${String(row.k)}: nothing references it`);
  return out;
}

/**
 * SQL selecting `id` (a stored tweet) and `embedded` (the deleted tweet its JSON still embeds; NULL when found without
 * the index), one row per pair; null when no embed rule applies. Through cs_embeds when it is complete, else one pass.
 */
export function embeddedCopiesSql(db: Db, target: Target): string | null {
  if (!target.embeds.length) return null;
  const tw = target.tweets;
  return embedIndexReady(db, target)
    ? `SELECT x.tweet_id AS id, x.embedded_id AS embedded FROM cs_embeds x JOIN ${quoteIdent(tw.table)} s ON s.${quoteIdent(tw.id)} = x.tweet_id
       WHERE EXISTS (SELECT 1 FROM cs_tombstones t WHERE t.type = 'tweets' AND t.id = x.embedded_id)`
    : `SELECT ${quoteIdent(tw.id)} AS id, NULL AS embedded FROM ${quoteIdent(tw.table)} WHERE ${target.embeds.map((rule) => embedMatches(rule, "(SELECT CAST(id AS TEXT) AS id FROM cs_tombstones WHERE type = 'tweets')")).join(' OR ')}`;
}

/**
 * SQL selecting `id` (a stored tweet) and `embedded` (a geo-scrubbed tweet, cs_scrubs) whose embedded copy in the row
 * still carries geo; null without embed rules or without the complete index (a pass per scrubbed tweet would not end).
 */
export function embeddedGeoSql(db: Db, target: Target): string | null {
  if (!embedIndexReady(db, target)) return null;
  const tw = target.tweets;
  const hasGeo = (json: string, at: string) => EMBEDDED_GEO_KEYS.map((k) => `json_type(${json}, ${quoteLiteral(`${at}.${k}`)}) IS NOT NULL`).join(' OR ');
  const stillGeo = target.embeds
    .map((rule) => {
      const col = `s.${quoteIdent(rule.column)}`;
      const test = rule.array
        ? `EXISTS (SELECT 1 FROM json_each(${col}, ${quoteLiteral(rule.path)}) e WHERE json_type(e.value) = 'object' AND json_extract(e.value, ${quoteLiteral(`$.${rule.idKey}`)}) = x.embedded_id AND (${hasGeo('e.value', '$')}))`
        : `json_extract(${col}, ${quoteLiteral(`${rule.path}.${rule.idKey}`)}) = x.embedded_id AND (${hasGeo(col, rule.path)})`;
      return `(CASE WHEN json_valid(${col}) THEN ${test} ELSE 0 END)`;
    })
    .join(' OR ');
  return `SELECT x.tweet_id AS id, x.embedded_id AS embedded FROM cs_scrubs g JOIN cs_embeds x ON x.embedded_id = CAST(g.id AS TEXT)
     JOIN ${quoteIdent(tw.table)} s ON s.${quoteIdent(tw.id)} = x.tweet_id WHERE g.type = 'tweets' AND (${stillGeo})`;
}

/** SQL selecting `k`, the key of each row of an orphan table that nothing references (rows never linked included). */
export function orphansSql(o: OrphanRule): string {
  const unreferenced = o.referencedBy.map((r) => `NOT EXISTS (SELECT 1 FROM ${quoteIdent(r.table)} r WHERE r.${quoteIdent(r.column)} = o.${quoteIdent(o.key)})`).join(' AND ');
  return `SELECT o.${quoteIdent(o.key)} AS k FROM ${quoteIdent(o.table)} o WHERE ${unreferenced}`;
}

/** A tombstone's ID as the column compares: INTEGER as it is, TEXT as its decimal text (so the column's index serves). */
export const tombstoneId = (encoding: IdEncoding, column = 't.id') => (encoding === 'text' ? `CAST(${column} AS TEXT)` : column);

/**
 * SQL selecting `id`, a tombstoned ID of `parentType` that a row of the relation's table still references (one row per
 * referencing row), and whatever `select` adds from that row (`c`). The one query of "a deleted row is still pointed
 * at": the audit's `dependents` check and countCopyResidue both use it.
 */
export function stillReferencingSql(relation: Relation, parentType: JobType, select = ''): string {
  const column = quoteIdent(relation.childColumn);
  return `SELECT t.id AS id${select ? `, ${select}` : ''} FROM cs_tombstones t JOIN ${quoteIdent(relation.childTable)} c ON c.${column} = ${tombstoneId(relation.childEncoding)} WHERE t.type = '${parentType}'`;
}
