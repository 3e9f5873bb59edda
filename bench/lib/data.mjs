// Deterministic bench data: stores of N tweets, results files of N lines, the CSV the sqlite3 floor imports, and the
// ID upload files for the download jobs. Everything is cached under the data directory by size and a format version,
// so a second run only measures.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';

/** Bump when a generator changes, so stale cached files are not reused. */
const VERSION = 'v1';

/** The migrations' fingerprint: a cached store made under other migrations is made again (the code refuses it). */
const SCHEMA = (() => {
  const dir = new URL('../../migrations/', import.meta.url);
  const hash = createHash('sha256');
  const files = [...readdirSync(dir).filter((name) => name.endsWith('.sql')).sort(), 'content/default_tables.sql'];
  for (const name of files) hash.update(readFileSync(new URL(name, dir)));
  return hash.digest('hex').slice(0, 8);
})();

/** mulberry32: the demo data's PRNG, so bench data is the same on every machine. */
import { prng } from '../../dist/store/demoData.js';

export { prng };

/**
 * The i-th stored tweet ID: 19-digit snowflake-like IDs, increasing with i (~2019 timestamps plus worker/sequence
 * noise).
 */
export function idAt(i) {
  return (1160000000000000000n + BigInt(i) * 3_900_000_000n + BigInt((i * 2654435761) % 4_000_000)).toString();
}

/**
 * The results mix of the apply and parse stages: every stored ID at most once, in a
 * shuffled order, with ~5% IDs not in the store, a blank line every 50,000 and a malformed line every 1,000.
 * [action, reason, share]
 */
export const REASONS = [
  ['delete', 'deleted', 0.36],
  ['delete', 'deactivated', 0.02],
  ['delete', 'bounced', 0.02],
  ['delete', 'suspended', 0.22],
  ['delete', 'protected', 0.14],
  ['delete', 'scrub_geo', 0.07],
  ['scrub_geo', 'geo_scrubbed', 0.05],
  ['rehydrate', 'tweet_edited', 0.07],
  ['delete', 'deleted', 0.05], // IDs not in the store
];
export const DELETE_REASONS = new Set(['deleted', 'deactivated', 'bounced']);

/** What the default policy does with a record: 'delete' | 'scrub' | 'edited' | <mark state>. */
export function effectOf(r) {
  if (r.action === 'scrub_geo' || r.reason === 'scrub_geo' || r.reason === 'geo_scrubbed') return 'scrub';
  if (r.action === 'rehydrate') return 'edited';
  if (DELETE_REASONS.has(r.reason)) return 'delete';
  return r.reason;
}

async function writeLines(file, produce) {
  const temp = `${file}.tmp`;
  const out = createWriteStream(temp);
  let text = '';
  const write = async (s) => {
    text += s;
    if (text.length > 1 << 20) {
      if (!out.write(text)) await once(out, 'drain');
      text = '';
    }
  };
  await produce(write);
  out.end(text);
  await once(out, 'finish');
  renameSync(temp, file);
}

/** A default-schema store of `rows` tweets by 200,000 authors, ~30% with geo and raw JSON carrying it. */
export async function makeStore(dir, rows, dist) {
  const file = path.join(dir, `store-${VERSION}-${SCHEMA}-${rows}.db`);
  if (existsSync(file)) return file;
  const temp = `${file}.tmp`;
  for (const s of ['', '-wal', '-shm']) rmSync(temp + s, { force: true });
  const { createStore } = await import(path.join(dist, 'store/migrate.js'));
  const db = createStore(temp);
  db.exec('DROP INDEX tweets_author_id');
  const insert = db.prepare(
    'INSERT INTO tweets (id, author_id, created_at, text, geo_lat, geo_lon, place_id, raw_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const random = prng(42);
  const chunk = 100_000;
  for (let start = 0; start < rows; start += chunk) {
    db.transaction(() => {
      for (let i = start; i < Math.min(rows, start + chunk); i++) {
        const id = idAt(i);
        const author = String(100000000 + Math.floor(random() * 200000));
        const geo = random() < 0.3;
        const lat = geo ? +(random() * 180 - 90).toFixed(6) : null;
        const lon = geo ? +(random() * 360 - 180).toFixed(6) : null;
        const text = `tweet number ${i} with some words to make it look real #${i % 977}`;
        const raw = `{"id":"${id}","author_id":"${author}","text":"${text}","lang":"en","public_metrics":{"like_count":${i % 113}}${
          geo ? `,"geo":{"place_id":"p${i % 5000}","coordinates":{"type":"Point","coordinates":[${lon},${lat}]}}` : ''
        }}`;
        insert.run(id, author, '2019-08-10T12:22:39.022Z', text, lat, lon, geo ? `p${i % 5000}` : null, raw);
      }
    })();
  }
  db.exec('CREATE INDEX tweets_author_id ON tweets(author_id)');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  renameSync(temp, file);
  return file;
}

/** `lines` result lines about a store of `lines` rows (see REASONS), plus the floor's CSV (id,effect) of the same. */
export async function makeResults(dir, lines) {
  const file = path.join(dir, `results-${VERSION}-${lines}.ndjson`);
  const csv = path.join(dir, `results-${VERSION}-${lines}.csv`);
  if (existsSync(file) && existsSync(csv)) return { file, csv };
  const order = new Uint32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  const shuffle = prng(7);
  for (let i = lines - 1; i > 0; i--) {
    const j = Math.floor(shuffle() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const records = [];
  const pick = prng(9);
  await writeLines(file, async (write) => {
    for (let n = 0; n < lines; n++) {
      let r = pick();
      let k = 0;
      while (k < REASONS.length - 1 && r >= REASONS[k][2]) r -= REASONS[k++][2];
      const [action, reason] = REASONS[k];
      const id = k === REASONS.length - 1 ? idAt(lines + n) : idAt(order[n]);
      if (n % 50_000 === 2) await write('\n');
      if (n % 1000 === 999) await write(`{"id":"${id}","action":"delete"\n`);
      else {
        await write(`{"id":"${id}","action":"${action}","created_at":"2019-08-10T12:22:39.022Z","reason":"${reason}"}\n`);
        records.push(`${id},${effectOf({ action, reason })}\n`);
      }
    }
  });
  await writeLines(csv, async (write) => {
    for (const line of records) await write(line);
  });
  return { file, csv };
}

/** An upload file of the first `count` stored IDs, one per line (what a shard file looks like). */
export async function makeIdFile(dir, count) {
  const file = path.join(dir, `ids-${VERSION}-${count}.txt`);
  if (existsSync(file)) return file;
  await writeLines(file, async (write) => {
    for (let i = 0; i < count; i++) await write(`${idAt(i)}\n`);
  });
  return file;
}
