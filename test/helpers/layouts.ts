import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { mulberry32 } from '../../src/prng.js';
import { runCli } from './cli.js';
import { REPO_ROOT, writeJson } from './tmp.js';

/**
 * Test stores in the layouts real collectors write (test/fixtures/layouts/*.sql say where each schema comes from), filled
 * from one collector-neutral archive by an ingester that writes the way that collector does, and the config a user
 * would write to keep each of them compliant.
 *
 * IDs are decimal strings everywhere in here and are bound as bigint: never as JS numbers.
 */

export type LayoutName = 'default' | 'twitter-to-sqlite' | 'twint';
export const LAYOUT_NAMES: readonly LayoutName[] = ['default', 'twitter-to-sqlite', 'twint'];

// ---------------------------------------------------------------------------------------------------------------------
// The archive: what was collected, independent of how a collector stores it.

export interface ArchiveUser {
  id: string;
  screenName: string;
  name: string;
  /** Carries the user's unique word (see uniqueWord), so residue can be searched for later. */
  description: string;
  location: string;
  createdAt: string;
  followers: number;
  /** twint keeps a new row whenever the profile changes: how many versions of this user it has seen (1 or 2). */
  versions: number;
}

export interface ArchiveTweet {
  id: string;
  author: string;
  createdAt: string;
  /** Carries the tweet's unique word; a retweet's text is "RT @author: <original text>", as X returns it. */
  text: string;
  retweetOf: string | null;
  quoteOf: string | null;
  /** Users this tweet replies to (twint's replies table). */
  replyTo: string[];
  placeId: string | null;
  lat: number | null;
  lon: number | null;
  mediaIds: string[];
  source: { name: string; url: string };
  /** Collected by a twint geo search (its `geo`/`near` columns): the search's filter. */
  search: { geo: string; near: string } | null;
}

export interface ArchiveMedia {
  id: string;
  url: string;
  /** The photo URL names the uploader and the status, as pbs.twimg.com links do. */
  expandedUrl: string;
}

export interface ArchivePlace {
  id: string;
  fullName: string;
  country: string;
  countryCode: string;
  bbox: number[][][];
}

export interface Archive {
  /** The account the collector runs as: its likes, followers and followings are what is collected. */
  owner: string;
  users: ArchiveUser[];
  tweets: ArchiveTweet[];
  media: ArchiveMedia[];
  places: ArchivePlace[];
  /** [followed, follower] */
  follows: [string, string][];
  /** Tweets the owner liked. */
  likes: string[];
}

const TWITTER_EPOCH = 1288834974657n;
const snowflake = (ms: bigint, sequence: bigint) => ((ms - TWITTER_EPOCH) << 22n) | (sequence & 0x3fffffn);

/** A token that appears in exactly one row's text, so a later scan can tell whether that row left the store. */
export function uniqueWord(kind: 'tweet' | 'user', index: number): string {
  return `${kind === 'tweet' ? 'qzt' : 'qzu'}${index.toString(36).padStart(4, '0')}x`;
}

const WORDS = 'archive river morning city library report vote museum open data coffee train rain election science music thread photo'.split(' ');
const PLACES: ArchivePlace[] = [
  { id: '01a9a39529b27f36', fullName: 'Manhattan, NY', country: 'United States', countryCode: 'US', bbox: [[[-74.026675, 40.683935], [-73.910408, 40.683935], [-73.910408, 40.877483], [-74.026675, 40.877483]]] },
  { id: '3b77caf94bfc81fe', fullName: 'Los Angeles, CA', country: 'United States', countryCode: 'US', bbox: [[[-118.668404, 33.704538], [-118.155409, 33.704538], [-118.155409, 34.337041], [-118.668404, 34.337041]]] },
  { id: '09f6a7707f18e0b1', fullName: 'Paris, France', country: 'France', countryCode: 'FR', bbox: [[[2.224101, 48.815521], [2.469905, 48.815521], [2.469905, 48.902146], [2.224101, 48.902146]]] },
  { id: '3078869807f9dd36', fullName: 'Berlin, Germany', country: 'Germany', countryCode: 'DE', bbox: [[[13.088304, 52.338079], [13.760909, 52.338079], [13.760909, 52.675323], [13.088304, 52.675323]]] },
];
const SOURCES = [
  { name: 'Twitter for iPhone', url: 'http://twitter.com/download/iphone' },
  { name: 'Twitter Web App', url: 'https://mobile.twitter.com' },
  { name: 'TweetDeck', url: 'https://about.twitter.com/products/tweetdeck' },
];

/** A deterministic archive: same options, same archive. Tweets come in ID (time) order; retweets and quotes point back. */
export function makeArchive(options: { tweets: number; users: number; seed?: number }): Archive {
  const random = mulberry32(options.seed ?? 11);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const taken = new Set<string>();
  const fresh = (make: () => bigint): string => {
    for (;;) {
      const id = make().toString();
      if (!taken.has(id)) {
        taken.add(id);
        return id;
      }
    }
  };
  const start2015 = Date.parse('2015-01-01T00:00:00Z');
  const span = Date.parse('2024-12-31T00:00:00Z') - start2015;

  const users: ArchiveUser[] = [];
  for (let i = 0; i < options.users; i++) {
    // A third are pre-snowflake accounts (counter IDs below 2^32), the rest 19-digit snowflakes.
    const old = random() < 0.33;
    const created = old ? Date.parse('2008-01-01T00:00:00Z') + Math.floor(random() * 1e11) : start2015 + Math.floor(random() * span);
    const id = fresh(() => (old ? BigInt(10_000 + Math.floor(random() * 4_000_000_000)) : snowflake(BigInt(created), BigInt(Math.floor(random() * 4096)))));
    const screenName = `u${BigInt(id).toString(36)}`;
    users.push({
      id,
      screenName,
      name: `${pick(WORDS)} ${pick(WORDS)} ${i}`,
      description: `${pick(WORDS)} ${uniqueWord('user', i)} ${pick(WORDS)}`,
      location: pick(['Berlin', 'Paris', 'NYC', 'Lagos', '']),
      createdAt: new Date(created).toISOString(),
      followers: Math.floor(random() * 20_000),
      versions: random() < 0.15 ? 2 : 1,
    });
  }
  const owner = users[0]!.id;

  const tweets: ArchiveTweet[] = [];
  const media: ArchiveMedia[] = [];
  const times = Array.from({ length: options.tweets }, () => start2015 + Math.floor(random() * span)).sort((a, b) => a - b);
  for (let i = 0; i < options.tweets; i++) {
    const ms = BigInt(times[i]!);
    const id = fresh(() => snowflake(ms, BigInt(i)));
    const author = pick(users);
    const earlier = tweets.filter((t) => t.retweetOf === null);
    const kind = earlier.length > 5 ? random() : 1;
    const base: ArchiveTweet = {
      id,
      author: author.id,
      createdAt: new Date(Number(ms)).toISOString(),
      text: `${pick(WORDS)} ${uniqueWord('tweet', i)} ${pick(WORDS)} ${pick(WORDS)}`,
      retweetOf: null,
      quoteOf: null,
      replyTo: [],
      placeId: null,
      lat: null,
      lon: null,
      mediaIds: [],
      source: pick(SOURCES),
      search: random() < 0.1 ? { geo: '48.880048,2.385939,5km', near: 'Paris' } : null,
    };
    if (kind < 0.12) {
      // A retweet: X gives it the original's text and media, and no geo of its own.
      const original = pick(earlier);
      const originalAuthor = users.find((u) => u.id === original.author)!;
      tweets.push({ ...base, text: `RT @${originalAuthor.screenName}: ${original.text} ${uniqueWord('tweet', i)}`, retweetOf: original.id, mediaIds: [...original.mediaIds] });
      continue;
    }
    if (kind < 0.18) base.quoteOf = pick(earlier).id;
    if (random() < 0.1) base.replyTo = [pick(users).id];
    if (random() < 0.25) {
      const place = pick(PLACES);
      // A point inside the place's bounding box (corners: south-west first, north-east third).
      const [west, south] = place.bbox[0]![0]!;
      const [east, north] = place.bbox[0]![2]!;
      base.placeId = place.id;
      base.lon = Math.round((west! + random() * (east! - west!)) * 1e6) / 1e6;
      base.lat = Math.round((south! + random() * (north! - south!)) * 1e6) / 1e6;
    }
    if (random() < 0.15) {
      const count = random() < 0.3 ? 2 : 1;
      for (let m = 0; m < count; m++) {
        const mediaId = fresh(() => snowflake(ms, BigInt(0x200000 + i * 4 + m)));
        const url = `https://pbs.twimg.com/media/M${BigInt(mediaId).toString(36)}.jpg`;
        media.push({ id: mediaId, url, expandedUrl: `https://twitter.com/${author.screenName}/status/${id}/photo/${m + 1}` });
        base.mediaIds.push(mediaId);
      }
    }
    tweets.push(base);
  }

  const follows: [string, string][] = [];
  for (const user of users.slice(1)) {
    if (random() < 0.3) follows.push([owner, user.id]);
    if (random() < 0.3) follows.push([user.id, owner]);
  }
  const likes = tweets.filter(() => random() < 0.1).map((t) => t.id);
  return { owner, users, tweets, media, places: PLACES, follows, likes };
}

// ---------------------------------------------------------------------------------------------------------------------
// Ingesters: each writes the archive the way its collector does.

type Db = Database.Database;

/** Opens a store the way a Python collector's connection behaves: no FK enforcement (better-sqlite3 turns it on). */
function openLikePython(file: string): Db {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  db.pragma('foreign_keys = OFF');
  // twint commits per tweet; without fsync per commit the build takes a second instead of half a minute. The file's
  // content and format are the same either way.
  db.pragma('synchronous = OFF');
  return db;
}

const big = (id: string | null) => (id === null ? null : BigInt(id));
const userById = (archive: Archive) => new Map(archive.users.map((u) => [u.id, u]));

/**
 * twitter-to-sqlite's save_tweets / save_users: sqlite-utils inserts every row with INSERT OR REPLACE on a connection
 * with recursive_triggers on (so the FTS triggers see the replaced row's delete), nested retweeted/quoted tweets are
 * saved again before the tweet that embeds them, dicts become JSON text, and follows are INSERT OR IGNORE.
 */
export function ingestTwitterToSqlite(db: Db, archive: Archive, tweets: readonly ArchiveTweet[] = archive.tweets): void {
  db.pragma('recursive_triggers = ON');
  const users = userById(archive);
  const mediaById = new Map(archive.media.map((m) => [m.id, m]));
  const places = new Map(archive.places.map((p) => [p.id, p]));
  const tweetsById = new Map(archive.tweets.map((t) => [t.id, t]));
  const upsertPlace = db.prepare(
    'INSERT OR REPLACE INTO [places] ([id], [url], [place_type], [name], [full_name], [country_code], [country], [contained_within], [bounding_box], [attributes]) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertSource = db.prepare('INSERT OR REPLACE INTO [sources] ([id], [name], [url]) VALUES (?, ?, ?)');
  const upsertUser = db.prepare(
    `INSERT OR REPLACE INTO [users] ([id], [screen_name], [name], [description], [location], [url], [protected], [followers_count],
       [friends_count], [listed_count], [created_at], [favourites_count], [geo_enabled], [verified], [statuses_count], [profile_image_url_https])
     VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
  );
  const lastCount = db.prepare('SELECT [count] FROM [count_history] WHERE [type] = ? AND [user] = ? ORDER BY [datetime] DESC LIMIT 1').pluck();
  const upsertCount = db.prepare('INSERT OR REPLACE INTO [count_history] ([type], [user], [datetime], [count]) VALUES (?, ?, ?, ?)');
  const upsertTweet = db.prepare(
    `INSERT OR REPLACE INTO [tweets] ([id], [user], [created_at], [full_text], [retweeted_status], [quoted_status], [place], [source],
       [truncated], [display_text_range], [in_reply_to_status_id], [in_reply_to_user_id], [in_reply_to_screen_name], [geo], [coordinates],
       [contributors], [is_quote_status], [retweet_count], [favorite_count], [favorited], [retweeted], [possibly_sensitive], [lang])
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, ?, ?, ?, ?, NULL, ?, ?, ?, 0, 0, 0, 'en')`,
  );
  const upsertMedia = db.prepare(
    `INSERT OR REPLACE INTO [media] ([id], [id_str], [indices], [media_url], [media_url_https], [url], [display_url], [expanded_url], [type], [sizes])
     VALUES (?, ?, '[0, 23]', ?, ?, ?, ?, ?, 'photo', '{"large": {"w": 2048, "h": 1536, "resize": "fit"}}')`,
  );
  const upsertMediaLink = db.prepare('INSERT OR REPLACE INTO [media_tweets] ([media_id], [tweets_id]) VALUES (?, ?)');
  const upsertLike = db.prepare('INSERT OR REPLACE INTO [favorited_by] ([tweet], [user]) VALUES (?, ?)');
  const insertFollow = db.prepare('INSERT OR IGNORE INTO [following] ([followed_id], [follower_id], [first_seen]) VALUES (?, ?, ?)');

  const saveUser = (user: ArchiveUser) => {
    upsertUser.run(
      BigInt(user.id), user.screenName, user.name, user.description, user.location, `https://example.org/${user.screenName}`,
      user.followers, 100, 3, user.createdAt, 10, 1, 500, `https://pbs.twimg.com/profile_images/${user.id}/a_normal.jpg`,
    );
    // save_user_counts: a new count_history row only when the count changed.
    for (const [type, count] of [[1n, user.followers], [2n, 100], [3n, 3]] as const) {
      if (lastCount.get(type, BigInt(user.id)) !== BigInt(count)) upsertCount.run(type, BigInt(user.id), '2024-06-01T00:00:00+00:00', count);
    }
  };
  const sourceId = (source: { name: string; url: string }) => {
    // sqlite-utils hash_id: sha1 of the record as sorted, compact JSON.
    const id = createHash('sha1').update(JSON.stringify({ name: source.name, url: source.url })).digest('hex');
    upsertSource.run(id, source.name, source.url);
    return id;
  };
  const saveTweet = (tweet: ArchiveTweet): void => {
    const author = users.get(tweet.author)!;
    if (tweet.placeId) {
      const p = places.get(tweet.placeId)!;
      upsertPlace.run(p.id, `https://api.twitter.com/1.1/geo/id/${p.id}.json`, 'city', p.fullName.split(',')[0], p.fullName, p.countryCode, p.country, '[]',
        JSON.stringify({ type: 'Polygon', coordinates: p.bbox }), '{}');
    }
    const source = sourceId(tweet.source);
    for (const nested of [tweet.quoteOf, tweet.retweetOf]) if (nested) saveTweet(tweetsById.get(nested)!);
    saveUser(author);
    const replyTo = tweet.replyTo[0] ? users.get(tweet.replyTo[0])! : null;
    upsertTweet.run(
      BigInt(tweet.id), BigInt(tweet.author), tweet.createdAt.replace('.000Z', '+00:00'), tweet.text, big(tweet.retweetOf), big(tweet.quoteOf), tweet.placeId, source,
      `[0, ${tweet.text.length}]`, replyTo?.id ?? null, replyTo?.screenName ?? null,
      // v1.1 keeps `geo` as [lat, lon] and `coordinates` as GeoJSON [lon, lat]; sqlite-utils stores both as JSON text.
      tweet.lat === null ? null : JSON.stringify({ type: 'Point', coordinates: [tweet.lat, tweet.lon] }),
      tweet.lat === null ? null : JSON.stringify({ type: 'Point', coordinates: [tweet.lon, tweet.lat] }),
      tweet.quoteOf ? 1 : 0, 3, 7,
    );
    for (const mediaId of tweet.mediaIds) {
      const m = mediaById.get(mediaId)!;
      upsertMedia.run(BigInt(m.id), m.id, m.url.replace('https:', 'http:'), m.url, `https://t.co/${m.id.slice(-8)}`, m.url.slice(8), m.expandedUrl);
      upsertMediaLink.run(BigInt(m.id), BigInt(tweet.id));
    }
  };

  db.transaction(() => {
    for (const tweet of tweets) saveTweet(tweet);
    // `twitter-to-sqlite favorites` saves the likes the API lists now: those among the tweets written in this run.
    const written = new Set(tweets.map((t) => t.id));
    for (const tweetId of archive.likes) if (written.has(tweetId)) upsertLike.run(BigInt(tweetId), BigInt(archive.owner));
    // Followers and followings come from their own commands, run with the first collection only.
    if (tweets !== archive.tweets) return;
    for (const [followed, follower] of archive.follows) {
      const other = users.get(followed === archive.owner ? follower : followed)!;
      saveUser(other);
      insertFollow.run(BigInt(followed), BigInt(follower), '2024-06-01T00:00:00');
    }
  })();
}

/**
 * twint's db.py: plain INSERT, every sqlite3.IntegrityError swallowed (a stored tweet stays as it was and the link rows
 * of that call are skipped), a new users row only when the profile hash changed, a retweet stored as the original
 * tweet plus a retweets row naming the retweeter.
 */
export function ingestTwint(db: Db, archive: Archive, tweets: readonly ArchiveTweet[] = archive.tweets): void {
  const users = userById(archive);
  const tweetsById = new Map(archive.tweets.map((t) => [t.id, t]));
  const insertUser = db.prepare('INSERT INTO users VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
  const latestHash = db.prepare('SELECT hex_dig FROM users WHERE id = ? LIMIT 1').pluck();
  const insertTweet = db.prepare('INSERT INTO tweets VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
  const insertRetweet = db.prepare('INSERT INTO retweets VALUES(?,?,?,?,?)');
  const insertReply = db.prepare('INSERT INTO replies VALUES(?,?,?)');
  const insertFavorite = db.prepare('INSERT INTO favorites VALUES(?,?)');
  const insertFollower = db.prepare('INSERT INTO followers VALUES(?,?)');
  const insertFollowing = db.prepare('INSERT INTO following VALUES(?,?)');
  const insertFollowName = (table: 'followers_names' | 'following_names') => db.prepare(`INSERT INTO ${table} VALUES(?,?,?)`);
  const followerName = insertFollowName('followers_names');
  const followingName = insertFollowName('following_names');
  const swallowIntegrity = (fn: () => void) => {
    try {
      db.transaction(fn)();
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && String((err as { code: string }).code).startsWith('SQLITE_CONSTRAINT'))) throw err;
    }
  };

  const saveUser = (user: ArchiveUser, version: number) => {
    const bio = version === 1 ? user.description : `${user.description} (edited)`;
    const fields = [BigInt(user.id), user.id, user.name, user.screenName, bio, user.location, `https://example.org/${user.screenName}`,
      user.createdAt.slice(0, 10), user.createdAt.slice(11, 19), 500, 100, user.followers, 10, 4, 0, 0,
      `https://pbs.twimg.com/profile_images/${user.id}/a_normal.jpg`, ''] as const;
    const hexDig = createHash('sha256').update(fields.map(String).join(',')).digest('hex');
    const old = latestHash.get(BigInt(user.id));
    if (old === undefined || old !== hexDig) swallowIntegrity(() => insertUser.run(...fields, hexDig, 1717200000000n + BigInt(version)));
  };

  for (const user of archive.users) for (let v = 1; v <= user.versions; v++) saveUser(user, v);

  // Timelines of the retweeters are scraped first, so their retweets are the first sight of an original (a later
  // sight fails on the primary key and twint drops that call's link rows, as it does in production).
  for (const tweet of [...tweets.filter((t) => t.retweetOf), ...tweets.filter((t) => !t.retweetOf)]) {
    // twint stores a retweet as the original tweet with retweet_data: the retweet's own ID only lands in retweets.
    const stored = tweet.retweetOf ? tweetsById.get(tweet.retweetOf)! : tweet;
    const author = users.get(stored.author)!;
    const quoted = stored.quoteOf ? tweetsById.get(stored.quoteOf)! : null;
    const created = new Date(stored.createdAt);
    swallowIntegrity(() => {
      insertTweet.run(
        BigInt(stored.id), stored.id, stored.text, 'en', stored.id, BigInt(created.getTime()), stored.createdAt.slice(0, 10), stored.createdAt.slice(11, 19), '+0000',
        stored.lat === null ? '' : JSON.stringify({ type: 'Point', coordinates: [stored.lat, stored.lon] }),
        0, 7, 3, BigInt(stored.author), stored.author, author.screenName, author.name, `https://twitter.com/${author.screenName}/status/${stored.id}`,
        '', '', '', '', stored.mediaIds.map((m) => `https://pbs.twimg.com/media/M${BigInt(m).toString(36)}.jpg`).join(','), '',
        quoted ? `https://twitter.com/${users.get(quoted.author)!.screenName}/status/${quoted.id}` : '', 0,
        stored.search?.geo ?? '', stored.search?.near ?? '', stored.source.name, 1717200000000n, '', '', '',
      );
      if (archive.likes.includes(stored.id)) insertFavorite.run(BigInt(archive.owner), BigInt(stored.id));
      if (tweet.retweetOf) {
        const retweeter = users.get(tweet.author)!;
        insertRetweet.run(BigInt(retweeter.id), retweeter.screenName, BigInt(stored.id), BigInt(tweet.id), BigInt(Math.floor(Date.parse(tweet.createdAt) / 1000)));
      }
      for (const replied of stored.replyTo) insertReply.run(BigInt(stored.id), BigInt(replied), users.get(replied)!.screenName);
    });
  }
  if (tweets !== archive.tweets) return;
  const owner = users.get(archive.owner)!;
  for (const [followed, follower] of archive.follows) {
    if (followed === archive.owner) {
      swallowIntegrity(() => insertFollower.run(BigInt(archive.owner), BigInt(follower)));
      swallowIntegrity(() => followerName.run(owner.screenName, 1717200000000n, users.get(follower)!.screenName));
    } else {
      swallowIntegrity(() => insertFollowing.run(BigInt(archive.owner), BigInt(followed)));
      swallowIntegrity(() => followingName.run(owner.screenName, 1717200000000n, users.get(followed)!.screenName));
    }
  }
}

/** How a generic ingester writes a row that may already be stored (issue 12's guard must hold against each). */
export type WriteMode = 'insert' | 'replace' | 'upsert';

/**
 * compliance-sync's own layout (migrations/0001_initial.sql), written by a generic v2 collector: plain INSERTs by
 * default, as the demo does; `replace` and `upsert` are the other ways ingesters write a row again. A re-ingest writes
 * only the authors of the tweets it writes.
 */
export function ingestDefault(db: Db, archive: Archive, tweets: readonly ArchiveTweet[] = archive.tweets, mode: WriteMode = 'insert'): { refused: number } {
  const verb = mode === 'replace' ? 'INSERT OR REPLACE' : 'INSERT';
  const onConflict = (columns: string[]) => (mode === 'upsert' ? ` ON CONFLICT (id) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')}` : '');
  const insertUser = db.prepare(`${verb} INTO users (id, username, name, created_at, raw_json) VALUES (?, ?, ?, ?, ?)${onConflict(['username', 'name', 'created_at', 'raw_json'])}`);
  const insertTweet = db.prepare(
    `${verb} INTO tweets (id, author_id, created_at, text, geo_lat, geo_lon, place_id, raw_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)` +
      onConflict(['author_id', 'created_at', 'text', 'geo_lat', 'geo_lon', 'place_id', 'raw_json']),
  );
  const authors = tweets === archive.tweets ? archive.users : archive.users.filter((u) => tweets.some((t) => t.author === u.id));
  const byId = new Map(archive.tweets.map((t, i) => [t.id, { tweet: t, index: i }]));
  /** The tweet alone, with its own geo (v1.1 and v2 keys as the collector kept them). */
  const own = (tweet: ArchiveTweet, v11: boolean): Record<string, unknown> => {
    const raw: Record<string, unknown> = v11
      ? { id_str: tweet.id, user_id_str: tweet.author, created_at: tweet.createdAt, text: tweet.text, lang: 'en' }
      : { id: tweet.id, author_id: tweet.author, created_at: tweet.createdAt, text: tweet.text, lang: 'en' };
    if (tweet.lat !== null) {
      raw.geo = { coordinates: { type: 'Point', coordinates: [tweet.lon, tweet.lat] }, place_id: tweet.placeId };
      raw.coordinates = { type: 'Point', coordinates: [tweet.lon, tweet.lat] };
      raw.place = { id: tweet.placeId, full_name: archive.places.find((p) => p.id === tweet.placeId)!.fullName };
    }
    return raw;
  };
  /**
   * What the collector keeps per tweet. Archives span X's API versions: tweets at odd positions as v1.1 objects (a
   * retweet or quote embeds the other tweet whole in retweeted_status / quoted_status), the others as v2 tweet objects
   * with their expansions (referenced_tweets, and the referenced tweets whole in includes.tweets).
   */
  const rawTweet = (tweet: ArchiveTweet): Record<string, unknown> => {
    const v11 = byId.get(tweet.id)!.index % 2 === 1;
    const raw = own(tweet, v11);
    const retweeted = tweet.retweetOf ? byId.get(tweet.retweetOf)!.tweet : null;
    const quoted = tweet.quoteOf ? byId.get(tweet.quoteOf)!.tweet : null;
    if (v11) {
      if (retweeted) raw.retweeted_status = own(retweeted, true);
      if (quoted) raw.quoted_status = own(quoted, true);
    } else {
      const refs = [...(retweeted ? [{ type: 'retweeted', id: retweeted.id }] : []), ...(quoted ? [{ type: 'quoted', id: quoted.id }] : [])];
      if (refs.length) {
        raw.referenced_tweets = refs;
        raw.includes = { tweets: [retweeted, quoted].filter((t): t is ArchiveTweet => t !== null).map((t) => own(t, false)) };
      }
    }
    return raw;
  };
  // Each row on its own, a refused one (a duplicate, or a guard's RAISE) counted and skipped, as ingesters do.
  let refused = 0;
  const write = (statement: Database.Statement, ...values: unknown[]) => {
    try {
      statement.run(...values);
    } catch (err) {
      if (!String((err as { code?: string }).code ?? '').startsWith('SQLITE_CONSTRAINT')) throw err;
      refused++;
    }
  };
  db.transaction(() => {
    for (const user of authors) {
      write(insertUser, BigInt(user.id), user.screenName, user.name, user.createdAt,
        JSON.stringify({ id: user.id, username: user.screenName, name: user.name, description: user.description, location: user.location }));
    }
    for (const tweet of tweets) {
      write(insertTweet, BigInt(tweet.id), BigInt(tweet.author), tweet.createdAt, tweet.text, tweet.lat, tweet.lon, tweet.placeId, JSON.stringify(rawTweet(tweet)));
    }
  })();
  return { refused };
}

// ---------------------------------------------------------------------------------------------------------------------
// Stores and configs.

export const LAYOUT_FIXTURES = path.join(REPO_ROOT, 'test/fixtures/layouts');

/** The fixture's DDL: the collector's schema as test/fixtures/layouts/<name>.sql reconstructs it. */
export function layoutDdl(name: Exclude<LayoutName, 'default'>): string {
  return readFileSync(path.join(LAYOUT_FIXTURES, `${name}.sql`), 'utf8');
}

/**
 * What a user would write under `store.tables` (and beside it) to keep a store of this layout compliant.
 * Keys that exist today: table, id, authorId, geoLat, geoLon, placeId, rawJson, compliance*. Keys issue 11 adds:
 * `null` compliance columns (marks go to the ledger's side table) and `geoColumns` (more columns to NULL on a geo scrub).
 * Foreign keys are not written down: they are declared in these schemas and must be discovered.
 */
export function layoutStoreConfig(name: LayoutName): Record<string, unknown> {
  const noMarkColumns = { complianceState: null, complianceReason: null, complianceAt: null };
  switch (name) {
    case 'default':
      return { tables: {} };
    case 'twitter-to-sqlite':
      return {
        tables: {
          tweets: { table: 'tweets', id: 'id', authorId: 'user', geoLat: null, geoLon: null, placeId: 'place', rawJson: null, geoColumns: ['geo', 'coordinates'], ...noMarkColumns },
          users: { table: 'users', id: 'id', ...noMarkColumns },
        },
        // Places mean something only while a stored tweet is in them; media (reached only through the link table
        // media_tweets) are found by discovery. Retweets (retweeted_status) are copies by default, quotes cleared.
        orphans: [{ table: 'places' }],
      };
    case 'twint':
      return {
        tables: {
          tweets: { table: 'tweets', id: 'id', authorId: 'user_id', geoLat: null, geoLon: null, placeId: null, rawJson: null, geoColumns: ['place', 'geo', 'near'], ...noMarkColumns },
          users: { table: 'users', id: 'id', ...noMarkColumns },
        },
      };
  }
}

/**
 * Builds a store file of the layout holding the archive, written by that collector's ingester. The default layout is
 * created by the CLI's own `migrate --create` (a new store whose mapping names the defaults), the others from their fixture
 * DDL, exactly as the collector leaves them: no compliance-sync object in them.
 */
export function buildLayoutStore(name: LayoutName, storePath: string, archive: Archive, env: NodeJS.ProcessEnv = {}): void {
  if (name === 'default') {
    const configPath = writeJson(`${storePath}.migrate.json`, { store: { path: path.basename(storePath) } });
    const migrated = runCli(['migrate', '--create', '--config', configPath], { env });
    if (migrated.code !== 0) throw new Error(`migrate of a new default store failed (${migrated.code}): ${migrated.stderr}`);
  }
  const db = openLikePython(storePath);
  try {
    if (name === 'default') ingestDefault(db, archive);
    else {
      db.exec(layoutDdl(name));
      if (name === 'twitter-to-sqlite') ingestTwitterToSqlite(db, archive);
      else ingestTwint(db, archive);
    }
  } finally {
    db.close();
  }
}

/**
 * The collector's ingester run again on some tweets (a later collection run), on its own connection; the default
 * layout's generic ingester writes in `defaultMode`.
 */
export function reingest(name: LayoutName, storePath: string, archive: Archive, tweets: readonly ArchiveTweet[], defaultMode: WriteMode = 'insert'): void {
  const db = openLikePython(storePath);
  db.pragma('busy_timeout = 10000');
  try {
    if (name === 'twitter-to-sqlite') ingestTwitterToSqlite(db, archive, tweets);
    else if (name === 'twint') ingestTwint(db, archive, tweets);
    else ingestDefault(db, archive, tweets, defaultMode);
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// What X says about the stored IDs.

/** A result as the emulator's rules pin it (action and reason in X's vocabulary). */
export interface PinnedOutcome {
  action: string;
  reason: string;
}

const OUTCOME = {
  deleted: { action: 'delete', reason: 'deleted' },
  deactivated: { action: 'delete', reason: 'deactivated' },
  protected: { action: 'delete', reason: 'protected' },
  suspended: { action: 'delete', reason: 'suspended' },
  scrub_geo: { action: 'scrub_geo', reason: 'scrub_geo' },
} as const;

/**
 * A scripted mix of outcomes for the stored IDs (about one tweet in five and one user in eight needs action), with
 * the cases the layouts make hard always present: an original that was retweeted and quoted, a tweet with media, a
 * liked tweet, a geo tweet scrubbed, a user with several stored versions, a user who follows and is followed, each
 * user outcome on an author of stored tweets. The collector's own account stays compliant.
 */
export function scriptOutcomes(archive: Archive, stored: { tweets: Set<string>; users: Set<string> }, seed = 5): { tweets: Map<string, PinnedOutcome>; users: Map<string, PinnedOutcome> } {
  const random = mulberry32(seed);
  const tweets = new Map<string, PinnedOutcome>();
  const users = new Map<string, PinnedOutcome>();
  const storedTweets = archive.tweets.filter((t) => stored.tweets.has(t.id));
  const retweeted = new Set(archive.tweets.flatMap((t) => (t.retweetOf ? [t.retweetOf] : [])));
  const quoted = new Set(archive.tweets.flatMap((t) => (t.quoteOf ? [t.quoteOf] : [])));
  const force = (tweet: ArchiveTweet | undefined, outcome: PinnedOutcome) => tweet && tweets.set(tweet.id, outcome);
  force(storedTweets.find((t) => retweeted.has(t.id) && quoted.has(t.id)) ?? storedTweets.find((t) => retweeted.has(t.id)), OUTCOME.deleted);
  force(storedTweets.find((t) => quoted.has(t.id) && !tweets.has(t.id)), OUTCOME.deactivated);
  force(storedTweets.find((t) => t.mediaIds.length && !t.retweetOf), OUTCOME.deleted);
  force(storedTweets.find((t) => archive.likes.includes(t.id) && !tweets.has(t.id)), OUTCOME.deleted);
  force(storedTweets.find((t) => t.lat !== null), OUTCOME.scrub_geo);
  force(storedTweets.find((t) => t.search !== null && !tweets.has(t.id)), OUTCOME.scrub_geo);
  for (const tweet of storedTweets) {
    if (tweets.has(tweet.id)) continue;
    const r = random();
    const outcome = r < 0.07 ? OUTCOME.deleted : r < 0.09 ? OUTCOME.deactivated : r < 0.12 ? OUTCOME.protected : r < 0.15 ? OUTCOME.suspended : r < 0.2 ? OUTCOME.scrub_geo : null;
    if (outcome) tweets.set(tweet.id, outcome);
  }

  const authors = new Set(storedTweets.map((t) => t.author));
  const candidates = archive.users.filter((u) => u.id !== archive.owner && stored.users.has(u.id));
  const followers = new Set(archive.follows.flat());
  const forceUser = (user: ArchiveUser | undefined, outcome: PinnedOutcome) => user && users.set(user.id, outcome);
  forceUser(candidates.find((u) => u.versions > 1 && authors.has(u.id)), OUTCOME.deleted);
  forceUser(candidates.find((u) => followers.has(u.id) && authors.has(u.id) && !users.has(u.id)), OUTCOME.deactivated);
  forceUser(candidates.find((u) => authors.has(u.id) && !users.has(u.id)), OUTCOME.protected);
  forceUser(candidates.find((u) => authors.has(u.id) && !users.has(u.id)), OUTCOME.suspended);
  forceUser(candidates.find((u) => authors.has(u.id) && !users.has(u.id)), OUTCOME.scrub_geo);
  for (const user of candidates) {
    if (users.has(user.id)) continue;
    const r = random();
    const outcome = r < 0.05 ? OUTCOME.deleted : r < 0.07 ? OUTCOME.protected : r < 0.09 ? OUTCOME.suspended : r < 0.11 ? OUTCOME.deactivated : r < 0.13 ? OUTCOME.scrub_geo : null;
    if (outcome) users.set(user.id, outcome);
  }
  return { tweets, users };
}
