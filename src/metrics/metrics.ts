import { Counter, Gauge, Registry } from 'prom-client';
import type { Config } from '../config/load.js';
import type { CycleEvents } from '../pipeline/events.js';
import type { Coverage } from '../store/coverage.js';
import type { Db } from '../store/open.js';
import { JOB_TYPES, type JobType } from '../types.js';
import type { ApiObserver } from '../xapi/client.js';
import { checkHealth, type Health } from './health.js';
import { readCoverage, readSnapshot, type OperationsSnapshot } from './snapshot.js';

const PREFIX = 'compliance_sync_';
/** Coverage counts rows in every checked range: at most this often between cycles (a cycle's close refreshes it). */
const COVERAGE_TTL_MS = 5 * 60_000;

export interface MetricsSource {
  db: Db;
  /** The config in force (the daemon's changes on reload). */
  config: () => Config;
  now?: () => Date;
}

/**
 * The daemon's Prometheus metrics. What happens in this process (cycles ending, API requests, rate-limit waits) is
 * counted from the pipeline's typed events and the API client's observer; what the ledger already knows (jobs,
 * result lines, rows changed, coverage, shards) is read from it at scrape time, so those figures survive restarts
 * and agree with `status` and `report`.
 */
export class Metrics {
  readonly registry = new Registry();
  private source: MetricsSource | null = null;
  private readonly running = new Set<JobType>();
  private readonly lastOutcome = new Map<JobType, string>();
  private coverage: { at: number; value: Record<JobType, Coverage> } | null = null;
  private snapshot: OperationsSnapshot | null = null;

  private readonly cycles: Counter<'type' | 'outcome'>;
  private readonly requests: Counter<'endpoint' | 'status'>;
  private readonly waits: Counter<'endpoint'>;
  private readonly waitSeconds: Counter<'endpoint'>;

  /** The API client's hooks: hand this to openRuntime. */
  readonly observer: ApiObserver = {
    request: (endpoint, status) => this.requests.inc({ endpoint, status }),
    rateLimitWait: (endpoint, seconds) => {
      this.waits.inc({ endpoint });
      this.waitSeconds.inc({ endpoint }, seconds);
    },
  };

  constructor() {
    const registers = [this.registry];
    this.cycles = new Counter({ name: `${PREFIX}cycles_total`, help: 'Cycles ended in this process, by type and outcome (closed, held, interrupted, failed).', labelNames: ['type', 'outcome'], registers });
    this.requests = new Counter({ name: `${PREFIX}api_requests_total`, help: 'Requests to the X API by endpoint and HTTP status (transfers: ok or the error code).', labelNames: ['endpoint', 'status'], registers });
    this.waits = new Counter({ name: `${PREFIX}rate_limit_waits_total`, help: 'Times a request waited for the rate budget, by endpoint.', labelNames: ['endpoint'], registers });
    this.waitSeconds = new Counter({ name: `${PREFIX}rate_limit_wait_seconds_total`, help: 'Time spent waiting for the rate budget, by endpoint.', labelNames: ['endpoint'], registers });
    new Gauge({
      name: `${PREFIX}cycle_running`,
      help: 'Whether a cycle of the type is running in this process (1) or not (0).',
      labelNames: ['type'],
      registers,
      collect: () => undefined,
    });
    this.ledgerFamilies();
  }

  /** Reads the ledger of this store (the observer counts from construction on: the client is built before the store). */
  attach(source: MetricsSource, events: CycleEvents): void {
    this.source = source;
    this.follow(events);
  }

  private now(): Date {
    return this.source?.now?.() ?? new Date();
  }

  private attached(): MetricsSource {
    if (!this.source) throw new Error('metrics read before a store was attached');
    return this.source;
  }

  /** Counts what the pipeline reports. */
  private follow(events: CycleEvents): void {
    const runningGauge = this.registry.getSingleMetric(`${PREFIX}cycle_running`) as Gauge<'type'>;
    for (const type of JOB_TYPES) runningGauge.set({ type }, 0);
    events.on('cycle:started', ({ type }) => {
      this.running.add(type);
      runningGauge.set({ type }, 1);
    });
    events.on('cycle:ended', ({ type, outcome, dryRun }) => {
      this.running.delete(type);
      runningGauge.set({ type }, 0);
      if (dryRun) return;
      this.cycles.inc({ type, outcome });
      this.lastOutcome.set(type, outcome);
    });
    events.on('cycle:closed', () => {
      this.coverage = null;
    });
  }

  /** What /healthz answers. */
  health(): Health {
    const snapshot = readSnapshot(this.attached().db, this.attached().config(), this.now(), this.currentCoverage());
    return checkHealth({
      config: this.attached().config(),
      now: this.now(),
      lastSuccess: (type) => snapshot.types[type].last_success_timestamp_seconds,
      lastOutcome: (type) => this.lastOutcome.get(type),
      running: (type) => this.running.has(type),
    });
  }

  /** The text /metrics serves. */
  async render(): Promise<string> {
    // One ledger read per scrape, shared by every family's collect().
    this.snapshot = readSnapshot(this.attached().db, this.attached().config(), this.now(), this.currentCoverage());
    try {
      return await this.registry.metrics();
    } finally {
      this.snapshot = null;
    }
  }

  private currentCoverage(): Record<JobType, Coverage> {
    const now = this.now();
    if (!this.coverage || now.getTime() - this.coverage.at > COVERAGE_TTL_MS) {
      this.coverage = { at: now.getTime(), value: readCoverage(this.attached().db, this.attached().config(), now) };
    }
    return this.coverage.value;
  }

  /** Families read from the ledger at scrape time: counters there are totals over the store's life. */
  private ledgerFamilies(): void {
    const registers = [this.registry];
    const snap = () => this.snapshot!;
    const perType = (set: (type: JobType, s: OperationsSnapshot['types'][JobType]) => void) => {
      for (const type of JOB_TYPES) set(type, snap().types[type]);
    };
    new Counter({
      name: `${PREFIX}jobs_total`,
      help: 'Compliance jobs created, and of them those that ended failed or expired, by type (ledger totals).',
      labelNames: ['type', 'outcome'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => {
          for (const [outcome, n] of Object.entries(s.jobs_total)) this.inc({ type, outcome }, n);
        });
      },
    });
    new Gauge({
      name: `${PREFIX}shards`,
      help: "Shards of each type's latest cycle, by state.",
      labelNames: ['type', 'state'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => {
          for (const [state, n] of Object.entries(s.shards)) this.set({ type, state }, n);
        });
      },
    });
    new Counter({
      name: `${PREFIX}result_lines_total`,
      help: 'Result lines applied, by type, reason and action taken (ledger totals).',
      labelNames: ['type', 'reason', 'action'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => {
          for (const line of s.result_lines_total) this.inc({ type, reason: line.reason, action: line.action }, line.count);
        });
      },
    });
    new Counter({
      name: `${PREFIX}rows_changed_total`,
      help: 'Rows changed in the content tables, by table and cause (ledger totals).',
      labelNames: ['table', 'cause'],
      registers,
      collect() {
        this.reset();
        perType((_type, s) => {
          for (const row of s.rows_changed_total) this.inc({ table: row.table, cause: row.cause }, row.count);
        });
      },
    });
    new Gauge({
      name: `${PREFIX}apply_rows_per_second`,
      help: 'Result lines per second of the latest finished apply run, by type.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => {
          if (s.apply_rows_per_second !== null) this.set({ type }, s.apply_rows_per_second);
        });
      },
    });
    new Gauge({
      name: `${PREFIX}last_success_timestamp_seconds`,
      help: 'When the latest real cycle of the type closed (Unix time).',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => {
          if (s.last_success_timestamp_seconds !== null) this.set({ type }, s.last_success_timestamp_seconds);
        });
      },
    });
    new Gauge({
      name: `${PREFIX}coverage_ratio`,
      help: 'Share of the stored IDs of the type checked by a cycle closed within audit.maxAge.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => this.set({ type }, s.coverage_ratio));
      },
    });
    new Gauge({
      name: `${PREFIX}oldest_unchecked_age_seconds`,
      help: 'Age (from its snowflake ID) of the oldest stored row not checked within audit.maxAge; 0 when none.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        perType((type, s) => {
          if (s.oldest_unchecked_age_seconds !== null) this.set({ type }, s.oldest_unchecked_age_seconds);
        });
      },
    });
    new Gauge({
      name: `${PREFIX}store_size_bytes`,
      help: 'Size of the store on disk (database file and write-ahead log).',
      registers,
      collect() {
        this.set(snap().store_size_bytes);
      },
    });
    new Counter({
      name: `${PREFIX}hook_deliveries_total`,
      help: 'Hook deliveries by hook and state (pending, delivered, failed) (ledger totals).',
      labelNames: ['hook', 'state'],
      registers,
      collect() {
        this.reset();
        for (const row of snap().hook_deliveries_total) this.inc({ hook: row.hook, state: row.state }, row.deliveries);
      },
    });
  }
}
