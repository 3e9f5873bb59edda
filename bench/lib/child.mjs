// One measurement, in its own process so its peak RSS (process.resourceUsage().maxRSS) is its own:
//   node bench/lib/child.mjs <stage> '<json args>'
// prints one JSON line: { ms, rows, bytes?, maxRssMb, ...details }. `ms` is timed inside the process (startup and
// imports excluded), so it compares like with like across variants.
import { createReadStream, createWriteStream, mkdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { effectOf } from './data.mjs';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const load = (module) => import(path.join(dist, module));

async function config(store) {
  const { parseConfig } = await load('config/load.js');
  return parseConfig({ store: { path: store } }, path.join(path.dirname(store), 'config.json'), {});
}

const stages = {
  /** Ours: plan the shards from the stored IDs (keyset), then exportShard each one to its file. */
  async 'export-ours'({ store, outDir, shardSize }) {
    const { openStore } = await load('store/open.js');
    const { StoredIds } = await load('store/storedIds.js');
    const { exportShard } = await load('pipeline/export.js');
    const started = performance.now();
    const db = openStore(store, { readonly: true });
    const ids = new StoredIds(db, await config(store), 'tweets');
    const plan = await ids.plan(shardSize); // async since 9078088; await also works on the older sync version
    let rows = 0;
    let bytes = 0;
    for (const [i, shard] of plan.shards.entries()) {
      const file = path.join(outDir, `ours-${i}.txt`);
      rows += await exportShard(ids, shard, file);
      bytes += statSync(file).size;
    }
    db.close();
    return { ms: performance.now() - started, rows, bytes, shards: plan.shards.length };
  },

  /** Ceiling: plain better-sqlite3 keyset pages of 50,000 IDs written to files of `shardSize` IDs. */
  async 'export-ceiling'({ store, outDir, shardSize }) {
    const started = performance.now();
    const db = new Database(store, { readonly: true });
    db.defaultSafeIntegers(true);
    const page = db.prepare('SELECT id FROM tweets WHERE id > ? ORDER BY id LIMIT ?').pluck();
    let after = -1n;
    let rows = 0;
    let bytes = 0;
    let shards = 0;
    for (;;) {
      const out = createWriteStream(path.join(outDir, `ceiling-${shards++}.txt`), { highWaterMark: 1 << 20 });
      let inShard = 0;
      let last = false;
      while (inShard < shardSize) {
        const ids = page.all(after, Math.min(50_000, shardSize - inShard));
        if (ids.length === 0) {
          last = true;
          break;
        }
        after = ids[ids.length - 1];
        inShard += ids.length;
        const text = `${ids.join('\n')}\n`;
        bytes += text.length;
        if (!out.write(text)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
      rows += inShard;
      if (last || inShard < shardSize) break;
    }
    db.close();
    return { ms: performance.now() - started, rows, bytes, shards };
  },

  /** Ours: readResultLines (JSON lines split by hand, JSON.parse per line) and toResultRecord's validation → records. */
  async 'parse-ours'({ file, store }) {
    const { readResultLines, BadLine } = await load('pipeline/resultLines.js');
    const { toResultRecord } = await load('pipeline/resultRecords.js');
    const policy = (await config(store)).reconcile.policy;
    const started = performance.now();
    let rows = 0;
    let rejected = 0;
    const read = await readResultLines(file, (line, value) => {
      if (value instanceof BadLine) {
        if (!value.blank) rejected++;
        return;
      }
      if (typeof toResultRecord(value, line, policy) === 'string') rejected++;
      else rows++;
    });
    return { ms: performance.now() - started, rows, rejected, lines: read.lines, bytes: read.bytesRead };
  },

  /** Ceiling: readline and JSON.parse per line, nothing else. */
  async 'parse-ceiling'({ file }) {
    const started = performance.now();
    let rows = 0;
    let rejected = 0;
    const lines = readline.createInterface({ input: createReadStream(file, { highWaterMark: 1 << 20 }), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      try {
        JSON.parse(line);
        rows++;
      } catch {
        rejected++;
      }
    }
    return { ms: performance.now() - started, rows, rejected, bytes: statSync(file).size };
  },

  /**
   * Before ours, untimed: the store's index of embedded copies (cs_embeds), which the first apply on a store fills from
   * every stored tweet, once (src/store/embedIndex.ts), filled as any earlier cycle leaves it: a one-off, not the
   * steady cost of an apply (and not something the bare loop does).
   */
  async 'fill-embeds'({ store }) {
    const { openStore } = await load('store/open.js');
    const { resolveTarget } = await load('store/target.js');
    const { ensureEmbedIndex } = await load('store/embedIndex.js');
    const cfg = await config(store);
    const started = performance.now();
    const db = openStore(store);
    const rows = await ensureEmbedIndex(db, resolveTarget(db, cfg));
    db.close();
    return { ms: performance.now() - started, rows };
  },

  /** Ours: applyResultsFile with the default config (batch size, safety gate, checkpoint, audit, rejects file). */
  async 'apply-ours'({ store, file, batchSize }) {
    const { openStore } = await load('store/open.js');
    const { createLogger } = await load('log.js');
    const { applyResultsFile } = await load('pipeline/apply/applyFile.js');
    const { parseConfig } = await load('config/load.js');
    const raw = { store: { path: store }, ...(batchSize ? { reconcile: { batchSize } } : {}) };
    const cfg = parseConfig(raw, path.join(path.dirname(store), 'config.json'), {});
    const started = performance.now();
    const db = openStore(store);
    const summary = await applyResultsFile({ db, config: cfg, type: 'tweets', file, logger: createLogger('warn') });
    db.close();
    const ms = performance.now() - started;
    return { ms, rows: summary.records, bytes: statSync(file).size, state: summary.state, applied: summary.applied, notFound: summary.notFound, batchSize: cfg.reconcile.batchSize };
  },

  /**
   * The bare loop of issue 4: reads and parses the same file, 50,000 records per transaction sorted by ID, the same
   * per-row statements.
   */
  async 'apply-bare'({ store, file }) {
    const started = performance.now();
    const db = new Database(store);
    db.defaultSafeIntegers(true);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const del = db.prepare('DELETE FROM tweets WHERE id = ?');
    const mark = db.prepare('UPDATE tweets SET compliance_state = ?, compliance_reason = ?, compliance_at = ? WHERE id = ?');
    const scrub = db.prepare(
      `UPDATE tweets SET geo_lat = NULL, geo_lon = NULL, place_id = NULL, raw_json = CASE WHEN json_valid(raw_json)
       THEN json_remove(raw_json, '$.geo', '$.coordinates', '$.place') ELSE raw_json END WHERE id = ?`,
    );
    const at = new Date().toISOString();
    const byId = (a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    let batch = [];
    let rows = 0;
    const flush = () => {
      batch.sort(byId);
      db.transaction(() => {
        for (const r of batch) {
          const effect = effectOf(r);
          if (effect === 'scrub') scrub.run(r.id);
          else if (effect === 'edited') mark.run('edited', r.reason, at, r.id);
          else if (effect === 'delete') del.run(r.id);
          else mark.run(r.reason, r.reason, at, r.id);
        }
      })();
      rows += batch.length;
      batch = [];
    };
    let rest = '';
    for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) {
        if (!line.trim()) continue;
        let r;
        try {
          r = JSON.parse(line);
        } catch {
          continue;
        }
        if (typeof r.id !== 'string' || typeof r.reason !== 'string') continue;
        batch.push(r);
        if (batch.length === 50_000) flush();
      }
    }
    flush();
    db.close();
    return { ms: performance.now() - started, rows, bytes: statSync(file).size };
  },

  /** Setup for the download stage (not measured): create a job, upload the IDs, wait for complete, download once. */
  async 'dl-setup'({ url, token, idFile, dest }) {
    const { ComplianceClient } = await load('xapi/client.js');
    const client = new ComplianceClient({ baseUrl: url, token, timeoutMs: 600_000 });
    let job = await client.createJob({ type: 'tweets' });
    await client.upload(job, idFile);
    while (job.status !== 'complete') {
      await new Promise((r) => setTimeout(r, 100));
      job = await client.getJob(job.id);
      if (job.status === 'failed' || job.status === 'expired') throw new Error(`job ${job.id} ${job.status}`);
    }
    const { bytes } = await client.download(job, dest);
    return { ms: 0, jobId: job.id, bytes, rows: 0 };
  },

  /** Ours: get the job, stream its results to a file. */
  async 'dl-ours'({ url, token, jobId, dest, job: given }) {
    const { ComplianceClient } = await load('xapi/client.js');
    const started = performance.now();
    const client = new ComplianceClient({ baseUrl: url, token, timeoutMs: 600_000 });
    const job = given ?? (await client.getJob(jobId));
    const { bytes } = await client.download(job, dest);
    return { ms: performance.now() - started, rows: null, bytes };
  },

  /** Ours, download and parse: the file as above, then our reader and validation (what the reconciler does first). */
  async 'dl-ours-parse'({ url, token, jobId, dest, store, job: given }) {
    const { ComplianceClient } = await load('xapi/client.js');
    const { readResultLines, BadLine } = await load('pipeline/resultLines.js');
    const { toResultRecord } = await load('pipeline/resultRecords.js');
    const policy = (await config(store)).reconcile.policy;
    const started = performance.now();
    const client = new ComplianceClient({ baseUrl: url, token, timeoutMs: 600_000 });
    const job = given ?? (await client.getJob(jobId));
    const { bytes } = await client.download(job, dest);
    let rows = 0;
    await readResultLines(dest, (line, value) => {
      if (!(value instanceof BadLine) && typeof toResultRecord(value, line, policy) !== 'string') rows++;
    });
    return { ms: performance.now() - started, rows, bytes };
  },

  /** The peer: twitter-api-v2's complianceJob + complianceJobResult (downloads into memory, returns an array). */
  async 'dl-peer'({ url, token, jobId, cert, job: given }) {
    const { TwitterApi } = await import('twitter-api-v2');
    const ca = await readFile(cert);
    const started = performance.now();
    const client = new TwitterApi(token, { httpAgent: new https.Agent({ ca, keepAlive: true }) });
    client.v2.setPrefix(`${url}/2/`);
    try {
      const job = given ?? (await client.v2.complianceJob(jobId)).data;
      const records = await client.v2.complianceJobResult(job);
      return { ms: performance.now() - started, rows: records.length, bytes: null };
    } catch (err) {
      return { ms: performance.now() - started, rows: 0, error: String(err?.message ?? err).slice(0, 200) };
    }
  },
};

const [stage, json] = process.argv.slice(2);
if (!stages[stage]) throw new Error(`unknown stage ${stage}`);
const args = JSON.parse(json ?? '{}');
const startedAt = performance.now();
if (stage === 'dl-peer') {
  // The peer fails inside a response handler (not its promise) when the body is over V8's string cap: report it.
  process.on('uncaughtException', (err) => {
    const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    process.stdout.write(`${JSON.stringify({ ms: Math.round(performance.now() - startedAt), rows: 0, error: `${err.code ?? ''} ${err.message}`.trim().slice(0, 120), maxRssMb })}\n`);
    process.exit(0);
  });
}
if (args.outDir) mkdirSync(args.outDir, { recursive: true });
const result = await stages[stage](args);
result.ms = Math.round(result.ms);
result.maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(`${JSON.stringify(result)}\n`);
