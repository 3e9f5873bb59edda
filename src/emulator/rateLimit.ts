/** The rate-limited API endpoints (storage URLs are not limited). */
export type Endpoint = 'create' | 'get' | 'list' | 'cancel';
const ENDPOINTS: readonly Endpoint[] = ['create', 'get', 'list', 'cancel'];

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Epoch seconds when the window ends, as `x-rate-limit-reset` says. */
  reset: number;
}

interface Window {
  start: number;
  count: number;
}

/**
 * X's limits as recorded (docs/x-api.md#rate-limits-and-headers): fixed windows per (app, endpoint) that start at the first call, 150 per 15 minutes.
 * Every request counts, refused ones too, so `maxPerWindow` shows whether a client ever overran its budget.
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly totals = new Map<Endpoint, number>();
  private readonly max = new Map<Endpoint, number>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  hit(app: string, endpoint: Endpoint, now: number): RateDecision {
    const key = `${app}\u0000${endpoint}`;
    let window = this.windows.get(key);
    if (!window || now >= window.start + this.windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count++;
    this.totals.set(endpoint, (this.totals.get(endpoint) ?? 0) + 1);
    this.max.set(endpoint, Math.max(this.max.get(endpoint) ?? 0, window.count));
    return {
      allowed: window.count <= this.limit,
      limit: this.limit,
      remaining: Math.max(0, this.limit - window.count),
      reset: Math.ceil((window.start + this.windowMs) / 1000),
    };
  }

  /** Requests so far: all time, in the current window, and the most in any one window, per endpoint (all apps). */
  counts(app: string, now: number): { requests: Record<Endpoint, number>; currentWindow: Record<Endpoint, number>; maxPerWindow: Record<Endpoint, number> } {
    const per = (get: (endpoint: Endpoint) => number) =>
      Object.fromEntries(ENDPOINTS.map((endpoint) => [endpoint, get(endpoint)])) as Record<Endpoint, number>;
    return {
      requests: per((e) => this.totals.get(e) ?? 0),
      currentWindow: per((e) => {
        const window = this.windows.get(`${app}\u0000${e}`);
        return window && now < window.start + this.windowMs ? window.count : 0;
      }),
      maxPerWindow: per((e) => this.max.get(e) ?? 0),
    };
  }
}
