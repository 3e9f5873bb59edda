import type { Logger } from '../log.js';
import { abortableSleep, type Sleep } from '../clock.js';
import type { Endpoint } from './types.js';

// The API's modules have long taken these from here; they live in src/clock.ts with the Clock.
export { abortableSleep, type Sleep };

/** A wait longer than this says so, and says so again at this interval while it lasts. */
export const WAIT_REPORT_MS = 30_000;

/**
 * A wait a person should see (a job slot, a rate-limit reset, an unreachable API), made of one or more sleeps: it
 * logs what it waits for, since when and until when if known, every 30 s while it lasts — at once when a single
 * sleep is known to take that long — and a last line when it is over. Waits shorter than 30 s stay silent.
 */
export class VisibleWait {
  readonly since: number;
  private reportedAt: number | null = null;

  constructor(
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    private readonly what: string,
    private readonly clock: () => number = Date.now,
    private readonly fields: Record<string, unknown> = {},
  ) {
    this.since = clock();
  }

  /** Sleeps `ms` (the wait ends at `until`, epoch ms, when known), in slices that end where a report is due. */
  async sleep(sleep: Sleep, ms: number, signal?: AbortSignal, until?: number): Promise<void> {
    const end = this.clock() + Math.max(0, ms);
    if (this.reportedAt === null && ms >= WAIT_REPORT_MS) this.report(this.clock(), until);
    for (;;) {
      const now = this.clock();
      if (now >= end) return;
      const due = (this.reportedAt ?? this.since) + WAIT_REPORT_MS;
      if (now >= due) {
        this.report(now, until);
        continue;
      }
      await sleep(Math.min(end, due) - now, signal);
    }
  }

  /** The wait ended: one line, if it was ever reported. */
  over(): void {
    if (this.reportedAt === null) return;
    this.log.info({ ...this.fields, since: iso(this.since), waitedS: Math.round((this.clock() - this.since) / 1000) }, `done waiting for ${this.what}`);
    this.reportedAt = null;
  }

  private report(now: number, until: number | undefined): void {
    this.reportedAt = now;
    this.log.warn(
      {
        ...this.fields,
        since: iso(this.since),
        waitedS: Math.round((now - this.since) / 1000),
        ...(until !== undefined && Number.isFinite(until) ? { until: iso(until) } : {}),
      },
      `waiting for ${this.what}`,
    );
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export interface RateBudgetOptions {
  /** Requests per window per endpoint (X: 150) until the server's `x-rate-limit-limit` says otherwise. */
  limit?: number;
  /** Window length (X: 15 minutes). */
  windowMs?: number;
  /** Calls allowed back to back before spacing starts; kept below `limit`. */
  burst?: number;
  clock?: () => number;
  sleep?: Sleep;
}

type Headers = Record<string, string | string[] | undefined>;

interface EndpointState {
  limit: number;
  burst: number;
  /** Tokens refilled per ms. */
  rate: number;
  tokens: number;
  refilledAt: number;
  /** No call before this time (epoch ms): the server said the window is used up. */
  blockedUntil: number;
}

/** Reset times are whole seconds and clocks drift: wait this much past them. */
const RESET_MARGIN_MS = 1000;

/**
 * Shared by every call of the process: per endpoint, reads x-rate-limit-limit/remaining/reset, waits for the reset
 * on 429 or when remaining hits 0, and spaces calls so the process stays within limit per window whatever the
 * number of jobs.
 *
 * A token bucket per endpoint holding `burst` tokens and refilling `limit - burst` per window: in any window at most
 * `burst + (limit - burst) = limit` calls start, so polling many jobs at once cannot exceed X's limit, while the few
 * calls of one job step (create, then get) need not wait.
 */
export class RateBudget {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly burst: number | undefined;
  private readonly clock: () => number;
  private readonly sleep: Sleep;
  private readonly states = new Map<Endpoint, EndpointState>();

  constructor(options: RateBudgetOptions = {}) {
    this.limit = Math.max(1, Math.floor(options.limit ?? 150));
    this.windowMs = Math.max(1, options.windowMs ?? 15 * 60_000);
    this.burst = options.burst;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? abortableSleep;
  }

  /**
   * Resolves when one call to `endpoint` may start, and counts it. Rejects with the signal's reason on abort.
   * With a logger, a wait of 30 s or more (a rate-limit reset) is logged as it goes.
   */
  async acquire(endpoint: Endpoint, signal?: AbortSignal, log?: Pick<Logger, 'warn' | 'info'>): Promise<void> {
    let wait: VisibleWait | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const state = this.state(endpoint);
      const now = this.clock();
      this.refill(state, now);
      const blockedFor = state.blockedUntil - now;
      if (blockedFor <= 0 && state.tokens >= 1) {
        state.tokens -= 1;
        wait?.over();
        return;
      }
      const tokenIn = state.tokens >= 1 ? 0 : (1 - state.tokens) / state.rate;
      const ms = Math.max(1, Math.ceil(Math.max(blockedFor, tokenIn)));
      if (log && (wait || ms >= WAIT_REPORT_MS)) {
        const what = blockedFor > 0 ? `the rate limit of the ${endpoint} endpoint to reset` : `a share of the ${endpoint} endpoint's rate limit`;
        wait ??= new VisibleWait(log, what, this.clock, { endpoint });
        await wait.sleep(this.sleep, ms, signal, blockedFor > 0 ? state.blockedUntil : now + ms);
      } else {
        await this.sleep(ms, signal);
      }
    }
  }

  /** Learns from a response's `x-rate-limit-*` headers (any status). */
  update(endpoint: Endpoint, headers: Headers): void {
    const state = this.state(endpoint);
    const limit = numberHeader(headers, 'x-rate-limit-limit');
    // The server's stated limit is the authority (X states 150; an emulator or a raised quota may state more).
    if (limit !== undefined && limit >= 1 && limit !== state.limit) this.setLimit(state, limit);
    const remaining = numberHeader(headers, 'x-rate-limit-remaining');
    if (remaining === undefined) return;
    // Other processes of the same App spend the same window: never believe we have more than the server says.
    this.refill(state, this.clock());
    state.tokens = Math.min(state.tokens, remaining);
    if (remaining <= 0) this.block(endpoint, this.resetAt(headers));
  }

  /** After a 429: no call to `endpoint` before `until` (epoch ms). */
  block(endpoint: Endpoint, until: number): void {
    const state = this.state(endpoint);
    // A reset absurdly far away (clock skew, garbage header) must not stall the daemon beyond one window.
    const capped = Math.min(until, this.clock() + this.windowMs + RESET_MARGIN_MS);
    state.blockedUntil = Math.max(state.blockedUntil, capped);
    state.tokens = Math.min(state.tokens, 0);
  }

  /** When the window of a response ends (epoch ms, with a margin): `x-rate-limit-reset`, else one window from now. */
  resetAt(headers: Headers): number {
    const reset = numberHeader(headers, 'x-rate-limit-reset');
    return reset === undefined ? this.clock() + this.windowMs : reset * 1000 + RESET_MARGIN_MS;
  }

  private state(endpoint: Endpoint): EndpointState {
    let state = this.states.get(endpoint);
    if (!state) {
      state = { limit: 0, burst: 0, rate: 0, tokens: 0, refilledAt: this.clock(), blockedUntil: 0 };
      this.setLimit(state, this.limit);
      state.tokens = state.burst;
      this.states.set(endpoint, state);
    }
    return state;
  }

  private setLimit(state: EndpointState, limit: number): void {
    state.limit = limit;
    const burst = this.burst ?? Math.floor(limit / 15);
    state.burst = Math.max(1, Math.min(burst, limit - 1));
    state.rate = Math.max(limit - state.burst, 1) / this.windowMs;
    state.tokens = Math.min(state.tokens, state.burst);
  }

  private refill(state: EndpointState, now: number): void {
    if (now > state.refilledAt) {
      state.tokens = Math.min(state.burst, state.tokens + (now - state.refilledAt) * state.rate);
      state.refilledAt = now;
    }
  }
}

function numberHeader(headers: Headers, name: string): number | undefined {
  const raw = headers[name];
  const value = Number(Array.isArray(raw) ? raw[0] : raw);
  return raw === undefined || raw === '' || !Number.isFinite(value) ? undefined : value;
}
