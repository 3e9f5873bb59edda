import type { Command } from 'commander';
import { cyclesInProgress } from '../store/reports.js';
import { ledgerOf } from '../store/ledger.js';
import { ledgerState } from '../store/migrate.js';
import { currentDaemon, currentLockHolder, describeHolder } from '../store/runLock.js';
import { readStoreStatus } from '../store/status.js';
import { JOB_TYPES } from '../types.js';
import { readSnapshot } from '../metrics/snapshot.js';
import { HookDeliveries } from '../store/hookDeliveries.js';
import { lastAudit } from '../store/audit.js';
import { configFromOptions, openStoreReadOnly, print, printJson, table, withConfigOption } from './context.js';

export function registerStatus(program: Command): void {
  withConfigOption(program.command('status'))
    .description('show the daemon, the schedule, the cycle in progress, the last cycles and the store (read-only: changes nothing)')
    .option('--json', 'print as JSON')
    .action((options: { config?: string; json?: boolean }) => {
      const config = configFromOptions(options);
      const db = openStoreReadOnly(config);
      try {
        const tables = [config.store.tables.tweets.table, config.store.tables.users.table];
        const store = readStoreStatus(db, tables);
        const ledgerNow = ledgerState(db);
        if (ledgerNow.version === 0 || ledgerNow.pending.length > 0 || ledgerNow.tooNew) {
          // The ledger is missing or from another version: its tables are not what this code reads. Say so and stop.
          const state = ledgerNow.version === 0 ? 'not migrated yet' : ledgerNow.tooNew ? `schema ${ledgerNow.version}, newer than this compliance-sync` : `schema ${ledgerNow.version}, migrations pending: ${ledgerNow.pending.join(', ')}`;
          const todo = ledgerNow.tooNew ? 'upgrade compliance-sync' : 'run `compliance-sync migrate` (the daemon and reconcile --now also do it when they start)';
          if (options.json) {
            printJson({ store: config.store.path, ledger: { ...ledgerNow, state }, tables: store.tables });
            return;
          }
          print(table([['store', config.store.path], ['ledger', state], ...store.tables.map(({ name, rows }) => [`rows in ${name}`, rows] as const)]));
          print(`no cycle information until the ledger is up to date: ${todo}`);
          return;
        }
        const ledger = ledgerOf(db);
        // The daemon holds its own lock for its whole life and the run lock only while a cycle runs.
        const daemon = currentDaemon(config.store.path);
        const holder = currentLockHolder(config.store.path);
        const daemonRunning = daemon !== null;
        const schedule = Object.fromEntries(
          JOB_TYPES.map((type) => {
            const state = ledger.scheduleState(type);
            // next_run_at is written by the running daemon; without one, nothing is scheduled.
            return [type, { ...state, nextRunAt: daemonRunning ? state.nextRunAt : null }];
          }),
        );
        const inProgress = cyclesInProgress(db);
        const lastCycles = ledger.recentCycles(10);
        // Named like the /metrics families (without the compliance_sync_ prefix).
        const metrics = readSnapshot(db, config, new Date());
        const hookDeliveries = new HookDeliveries(db).recent(10);
        const audit = lastAudit(db);
        const auditSummary = audit && { id: audit.id, startedAt: audit.startedAt, outcome: audit.outcome, findings: audit.findings, scanBytes: audit.scanBytes };
        if (options.json) {
          printJson({ store: config.store.path, daemon: { running: daemonRunning, pid: daemon?.pid ?? null, since: daemon?.since ?? null, state: daemon?.state ?? null }, runLock: holder, schedule, inProgress, ...store, lastCycles, metrics, hookDeliveries, lastAudit: auditSummary });
          return;
        }
        print(
          table([
            ['store', config.store.path],
            ['store id', store.storeId ?? '-'],
            ['schema version', `${store.schemaVersion} (${store.migrations.map((m) => `${m.version}_${m.name}`).join(', ')})`],
            ...store.tables.map(({ name, rows }) => [`rows in ${name}`, rows] as const),
            [
              'daemon',
              daemon
                ? `running (pid ${daemon.pid} on ${daemon.host}, since ${daemon.since}): ${daemon.state ?? 'starting'}`
                : 'not running, so no cycle is scheduled (start it: compliance-sync run, or systemctl start compliance-sync)',
            ],
            ['run lock', holder ? `held by ${describeHolder(holder)}` : 'free'],
            ...JOB_TYPES.map((type) => {
              const scheduled = schedule[type]!;
              const next = daemonRunning ? (scheduled.nextRunAt ? `next run ${scheduled.nextRunAt}` : 'not in schedule.types') : 'no daemon running';
              return [`${type}`, `${next}; last started ${scheduled.lastStartedAt ?? 'never'}; last success ${scheduled.lastSuccessAt ?? 'never'}`] as const;
            }),
            ...JOB_TYPES.map((type) => {
              const m = metrics.types[type];
              const age = m.oldest_unchecked_age_seconds;
              return [
                `${type} coverage`,
                `${(m.coverage_ratio * 100).toFixed(1)}% checked within ${metrics.audit_max_age}${age ? `; oldest unchecked row ${Math.round(age / 86_400)} days old` : ''}`,
              ] as const;
            }),
            ['store size', `${metrics.store_size_bytes} bytes`],
            [
              'last audit',
              audit ? `#${audit.id} at ${audit.startedAt}: ${audit.outcome}${audit.findings ? ` (${audit.findings} findings)` : ''}` : 'none (compliance-sync audit)',
            ],
          ]),
        );
        for (const cycle of inProgress) {
          const active = cycle.activeShard
            ? `; shard ${cycle.activeShard.seq} ${cycle.activeShard.state}${cycle.activeShard.job ? `, job ${cycle.activeShard.job.id} ${cycle.activeShard.job.status}` : ''}`
            : '';
          // An open cycle with no process holding the store is not progressing: it waits for the next run to resume it.
          const label = holder ? 'in progress' : 'unfinished, no process is running it (the next run or `reconcile --now` resumes it)';
          print(`\n${label}: ${cycle.type} cycle #${cycle.cycleId} (${cycle.trigger}, since ${cycle.startedAt}): ${cycle.shardsDone}/${cycle.shardsTotal} shards done${cycle.shardsHeld ? `, ${cycle.shardsHeld} held` : ''}${active}`);
        }
        print(lastCycles.length ? '\nrecent cycles:' : '\nno cycles yet');
        for (const cycle of lastCycles) {
          const summary = cycle.summary && 'idsChecked' in cycle.summary ? cycle.summary : null;
          const detail = summary
            ? `: ${summary.idsChecked} IDs checked, ${summary.jobsUsed} jobs, ${Object.entries(summary.actions).map(([k, v]) => `${k} ${v}`).join(', ') || 'no actions'}${summary.shards.failed ? `, ${summary.shards.failed} shards failed` : ''}`
            : '';
          print(`  #${cycle.id} ${cycle.type} ${cycle.state} (${cycle.trigger}) started ${cycle.startedAt}${cycle.finishedAt ? `, finished ${cycle.finishedAt}` : ''}${detail}`);
        }
        if (hookDeliveries.length) print('\nrecent hook deliveries:');
        for (const d of hookDeliveries) {
          const outcome = d.state === 'failed' ? `FAILED after ${d.attempts} attempts: ${d.lastError ?? 'unknown'}${d.idsFile ? `; the IDs are in ${d.idsFile}` : ''}` : `${d.state} (${d.attempts} attempts)`;
          print(`  ${d.hook} for cycle #${d.cycleId}: ${outcome}, ${d.updatedAt}`);
        }
      } finally {
        db.close();
      }
    });
}
