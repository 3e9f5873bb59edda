import { mulberry32 } from '../prng.js';
import { snowflake, snowflakeTime } from '../types.js';
import type { Db } from './open.js';

export interface SeedOptions {
  tweets: number;
  users: number;
  /** Same seed, same store. */
  seed?: number;
  /** Share of tweets with coordinates and a place. */
  geoShare?: number;
}

const WORDS = (
  'archive compliance river morning city library report vote museum open data ' +
  'coffee train rain election science music football story news thread photo'
).split(' ');
const PLACES = ['01a9a39529b27f36', '3b77caf94bfc81fe', '5a110d312052166f', '96683cc9126741d1', '1c69a67ad480e1b1'];

/** The demo data's PRNG (also used by bench/ to make its data). */
export { mulberry32 as prng } from '../prng.js';

/**
 * Fills the default-schema content tables with realistic rows: users with old counter IDs and newer snowflakes,
 * tweets with 19-digit snowflakes from 2015–2024 by those users, some with coordinates, a place and raw JSON.
 */
export function seedStore(db: Db, options: SeedOptions): { tweets: number; users: number } {
  const random = mulberry32(options.seed ?? 42);
  const geoShare = options.geoShare ?? 0.2;
  const insertUser = db.prepare('INSERT OR IGNORE INTO users (id, username, name, created_at, raw_json) VALUES (?, ?, ?, ?, ?)');
  const insertTweet = db.prepare(
    `INSERT OR IGNORE INTO tweets (id, author_id, created_at, text, geo_lat, geo_lon, place_id, raw_json)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const userIds: bigint[] = [];
  const start2008 = BigInt(Date.parse('2008-01-01T00:00:00Z'));
  const start2015 = BigInt(Date.parse('2015-01-01T00:00:00Z'));
  const span = BigInt(Date.parse('2024-12-31T00:00:00Z')) - start2015;
  const between = (from: bigint, width: bigint) => from + BigInt(Math.floor(random() * Number(width)));

  db.transaction(() => {
    for (let i = 0; i < options.users; i++) {
      // A third are pre-snowflake accounts with small counter IDs; the rest are snowflakes.
      const id = random() < 0.33 ? BigInt(10_000 + Math.floor(random() * 4_000_000_000)) : snowflake(between(start2015, span), BigInt(i));
      const created = snowflakeTime(id.toString()) ?? new Date(Number(between(start2008, start2015 - start2008)));
      const username = `user_${id.toString(36)}`;
      userIds.push(id);
      insertUser.run(id, username, `User ${i}`, created.toISOString(), JSON.stringify({ id: id.toString(), username }));
    }
  })();

  // Rows are generated in batches and inserted in ID order: appending to the primary-key B-tree is far cheaper
  // than inserting at random places.
  const batch = 50_000;
  for (let done = 0; done < options.tweets; done += batch) {
    const rows: [bigint, bigint, string, string, number | null, number | null, string | null, string][] = [];
    for (let i = done; i < Math.min(options.tweets, done + batch); i++) {
      const ms = between(start2015, span);
      const id = snowflake(ms, BigInt(i));
      const author = userIds.length ? userIds[Math.floor(random() * userIds.length)]! : BigInt(1 + Math.floor(random() * 1e9));
      const text = Array.from({ length: 6 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
      const hasGeo = random() < geoShare;
      const lat = hasGeo ? Math.round((random() * 140 - 70) * 1e5) / 1e5 : null;
      const lon = hasGeo ? Math.round((random() * 340 - 170) * 1e5) / 1e5 : null;
      const place = hasGeo ? PLACES[Math.floor(random() * PLACES.length)]! : null;
      const raw: Record<string, unknown> = { id: id.toString(), author_id: author.toString(), text, lang: 'en' };
      if (hasGeo) {
        raw.geo = { coordinates: { type: 'Point', coordinates: [lon, lat] }, place_id: place };
        raw.place = { id: place, full_name: 'Somewhere' };
        raw.coordinates = { type: 'Point', coordinates: [lon, lat] };
      }
      rows.push([id, author, new Date(Number(ms)).toISOString(), text, lat, lon, place, JSON.stringify(raw)]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    db.transaction(() => {
      for (const row of rows) insertTweet.run(...row);
    })();
  }
  const count = (table: string) => Number(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());
  return { tweets: count('tweets'), users: count('users') };
}

/** A demo tweet as `demo` shows it, before and after a cycle. */
export interface DemoTweet {
  id: bigint;
  text: string;
  geo_lat: number | null;
  geo_lon: number | null;
  place_id: string | null;
  compliance_state: string | null;
}

/** The first `limit` demo tweets by ID, with what `demo` picks its examples by: the author and whether it has a location. */
export function firstDemoTweets(db: Db, limit: number): { id: bigint; author_id: bigint; geo_lat: number | null }[] {
  return db.prepare('SELECT id, author_id, geo_lat FROM tweets ORDER BY id LIMIT ?').all(limit) as { id: bigint; author_id: bigint; geo_lat: number | null }[];
}

/** One demo tweet; undefined once deleted. */
export function demoTweet(db: Db, id: string): DemoTweet | undefined {
  return db.prepare('SELECT id, text, geo_lat, geo_lon, place_id, compliance_state FROM tweets WHERE id = ?').get(id) as DemoTweet | undefined;
}
