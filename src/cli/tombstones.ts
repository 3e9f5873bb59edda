import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { StoreError, UsageError } from '../errors.js';
import { ledgerState } from '../store/migrate.js';
import { readTombstones } from '../store/tombstones.js';
import { JOB_TYPES, type JobType } from '../types.js';
import type { Db } from '../store/open.js';
import { configFromOptions, openStoreReadOnly, withConfigOption } from './context.js';

interface ExportOptions {
  config?: string;
  type?: JobType;
  since?: Date;
  out?: string;
  format: 'ids' | 'ndjson';
}

export function registerTombstones(program: Command): void {
  const tombstones = program
    .command('tombstones')
    .description('the IDs deleted for compliance (ID, type, reason, time; no content), for downstream systems');
  withConfigOption(tombstones.command('export'))
    .description('write the tombstones, for search indexes, exports and backups that must delete the same IDs (read-only)')
    .addOption(new Option('--type <type>', 'only tweets or only users').choices(JOB_TYPES))
    .option('--since <date>', 'only those deleted at or after this ISO date or time', (value) => {
      const date = new Date(value);
      if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('must be a date like 2026-11-01 or 2026-11-01T00:00:00Z');
      return date;
    })
    .option('--out <file>', 'write to this file (replaced whole when done) instead of stdout')
    .addOption(new Option('--format <format>', 'ids: one ID per line (needs --type); ndjson: one {type,id,reason,deletedAt} per line').choices(['ids', 'ndjson']).default('ndjson'))
    .action(async (options: ExportOptions) => {
      if (options.format === 'ids' && !options.type) {
        throw new UsageError('--format ids writes bare IDs, and tweet and user IDs are separate namespaces', {
          hint: 'add --type tweets (or users), or use --format ndjson',
        });
      }
      const config = configFromOptions(options);
      const db = openStoreReadOnly(config);
      try {
        const ledger = ledgerState(db);
        if (ledger.version === 0 || ledger.pending.length > 0 || ledger.tooNew) {
          throw new StoreError('ledger_not_current', `the store ${config.store.path} has no tombstones ledger at this version (schema ${ledger.version})`, {
            hint: ledger.tooNew ? 'upgrade compliance-sync' : 'compliance-sync migrate',
          });
        }
        if (!options.out) {
          await writeTombstones(db, options, process.stdout);
          return;
        }
        const file = path.resolve(options.out);
        const partial = `${file}.partial`;
        const out = createWriteStream(partial);
        try {
          const n = await writeTombstones(db, options, out);
          out.end();
          await once(out, 'finish');
          renameSync(partial, file);
          process.stderr.write(`${n} tombstones written to ${file}\n`);
        } catch (err) {
          out.destroy();
          rmSync(partial, { force: true });
          throw err;
        }
      } finally {
        db.close();
      }
    });
}

async function writeTombstones(db: Db, options: ExportOptions, out: Writable): Promise<number> {
  let n = 0;
  let chunk = '';
  const flush = async () => {
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
  };
  for (const t of readTombstones(db, { type: options.type, since: options.since?.toISOString() })) {
    chunk += options.format === 'ids' ? `${t.id}\n` : `${JSON.stringify({ type: t.type, id: t.id, reason: t.reason, deletedAt: t.deletedAt })}\n`;
    n++;
    if (chunk.length >= 1 << 20) await flush();
  }
  if (chunk) await flush();
  return n;
}


