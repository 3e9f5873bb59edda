// A set of IDs bound as one parameter (a JSON array), in the encoding of the column they are compared with.
import type { Id } from '../types.js';
import type { IdEncoding } from './target.js';

/**
 * A set of IDs as one bound parameter: a JSON array expanded by `json_each` inside the statement (one bind for a whole
 * chunk). IDs stay decimal text end to end: JSON numbers for INTEGER columns (SQLite's JSON reads them as exact 64-bit
 * integers), JSON strings for TEXT columns (where a number would never equal the stored text).
 */
export interface IdList {
  readonly json: string;
  readonly size: number;
}

export function idList(ids: readonly Id[], encoding: IdEncoding): IdList {
  const json = encoding === 'number' ? `[${ids.join(',')}]` : JSON.stringify(ids);
  return { json, size: ids.length };
}

/** A column's rows whose value is in the bound IdList. */
export const IN_LIST = 'IN (SELECT value FROM json_each(?))';
