import type { Db } from './open.js';

/**
 * Makes `prepare` run once per connection: its statements are kept with the connection (and go with it), so a
 * caller asking again on the same connection gets the same prepared statements.
 */
export function perConnection<T extends object>(prepare: (db: Db) => T): (db: Db) => T {
  const kept = new WeakMap<Db, T>();
  return (db) => {
    let value = kept.get(db);
    if (!value) kept.set(db, (value = prepare(db)));
    return value;
  };
}
