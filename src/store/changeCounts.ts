/**
 * Why a row changed: `result` the result line's own row, `fk` an action on a relation (a discovered FOREIGN KEY or
 * `store.dependents`), `cascade` a user's tweets, `copy` a copy of a deleted tweet (a retweet), `embed` a tweet
 * embedded in another row's JSON removed or geo-scrubbed, `orphan` a row nothing references any more (media, places),
 * `trigger` the store's own triggers (full-text index upkeep excluded).
 */
export type ChangeCause = 'result' | 'fk' | 'cascade' | 'copy' | 'embed' | 'orphan' | 'trigger';
/** Every cause, in the order report tables show them. */
export const CHANGE_CAUSES: readonly ChangeCause[] = ['result', 'fk', 'cascade', 'copy', 'embed', 'orphan', 'trigger'];
/** What happened to it: `marked` is a compliance mark (in the row's columns or in the ledger's cs_marks). */
export type ChangeKind = 'deleted' | 'updated' | 'marked' | 'inserted';

export interface ChangeCount {
  table: string;
  cause: ChangeCause;
  kind: ChangeKind;
  count: number;
}

interface Cell extends Omit<ChangeCount, 'count'> {
  n: number;
}

/**
 * Rows changed, per table, cause and kind, counted on the hot path: each statement owns a cell it adds to (no lookup
 * per row), and a batch drains them into its ledger transaction.
 */
export class ChangeCounter {
  private readonly cells = new Map<string, Cell>();

  cell(table: string, cause: ChangeCause, kind: ChangeKind): Cell {
    const key = `${table.toLowerCase()}\t${cause}\t${kind}`;
    let cell = this.cells.get(key);
    if (!cell) this.cells.set(key, (cell = { table, cause, kind, n: 0 }));
    return cell;
  }

  /** Adds n to the cell and returns n, so a statement's result passes through. */
  add(cell: Cell, n: number): number {
    cell.n += n;
    return n;
  }

  drain(): ChangeCount[] {
    const out: ChangeCount[] = [];
    for (const cell of this.cells.values()) {
      if (cell.n === 0) continue;
      out.push({ table: cell.table, cause: cell.cause, kind: cell.kind, count: cell.n });
      cell.n = 0;
    }
    return out;
  }
}

/** Adds a batch's changes into running totals keyed table → kind → cause (the shape a run's counts_json keeps). */
export function addChanges(into: ChangesByTable, changes: readonly ChangeCount[]): ChangesByTable {
  for (const c of changes) {
    const byKind = (into[c.table] ??= {});
    const byCause = (byKind[c.kind] ??= {});
    byCause[c.cause] = (byCause[c.cause] ?? 0) + c.count;
  }
  return into;
}

export type ChangesByTable = Record<string, Partial<Record<ChangeKind, Partial<Record<ChangeCause, number>>>>>;
