import { seededRandom } from './random.js';

/**
 * How often a fault fires: a number in (0, 1) is a rate drawn from the seeded PRNG, an integer ≥ 1 is a count (the
 * first N occurrences), 0 is off. The object form says it explicitly and carries the fault's parameter.
 */
export type FaultSpec =
  | number
  | {
      rate?: number;
      count?: number;
      /** api5xx: 500 or 503 (default: alternate); uploadReject: 503 (default) or 403. */
      status?: number;
      /** slowProcessing: how many times longer processing takes (default 10). */
      factor?: number;
    };

const FAULT_NAMES = ['api5xx', 'rate429', 'jobFail', 'slowProcessing', 'cutDownload', 'uploadReject', 'downloadForbidden'] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

export type FaultOptions = Partial<Record<FaultName, FaultSpec>> & {
  /** Seed of the fault PRNG (default: the emulator's seed). */
  seed?: string;
};

interface Armed {
  rate: number;
  remaining: number;
  status?: number | undefined;
  factor?: number | undefined;
}

function arm(name: FaultName, spec: FaultSpec | undefined): Armed | null {
  if (spec === undefined) return null;
  const object = typeof spec === 'number' ? (spec > 0 && spec < 1 ? { rate: spec } : { count: spec }) : spec;
  const rate = object.rate ?? 0;
  const count = object.count ?? 0;
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`fault ${name}: rate must be in [0, 1] (got ${rate})`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`fault ${name}: count must be an integer ≥ 0 (got ${count})`);
  if (rate === 0 && count === 0) return null;
  return { rate, remaining: count, status: object.status, factor: object.factor };
}

/** The armed faults; `fire` is asked at each occurrence of a fault's situation and says whether it happens. */
export class Faults {
  private armed = new Map<FaultName, Armed>();
  private random: () => number;
  private readonly fired = new Map<FaultName, number>();

  constructor(options: FaultOptions = {}, defaultSeed = 'compliance-sync') {
    this.random = seededRandom(options.seed ?? defaultSeed);
    this.set(options);
  }

  /** Replaces every fault setting (faults not named are switched off; counts start again). */
  set(options: FaultOptions): void {
    const armed = new Map<FaultName, Armed>();
    for (const name of Object.keys(options)) {
      if (name === 'seed') continue;
      if (!(FAULT_NAMES as readonly string[]).includes(name)) throw new RangeError(`unknown fault "${name}" (known: ${FAULT_NAMES.join(', ')})`);
      const fault = arm(name as FaultName, options[name as FaultName]);
      if (fault) armed.set(name as FaultName, fault);
    }
    this.armed = armed;
    if (options.seed !== undefined) this.random = seededRandom(options.seed);
  }

  /** Whether the fault happens now; returns its settings when it does. */
  fire(name: FaultName): { status?: number | undefined; factor?: number | undefined } | null {
    const fault = this.armed.get(name);
    if (!fault) return null;
    let hit = false;
    if (fault.remaining > 0) {
      fault.remaining--;
      hit = true;
    } else if (fault.rate > 0) {
      hit = this.random() < fault.rate;
    }
    if (!hit) return null;
    this.fired.set(name, (this.fired.get(name) ?? 0) + 1);
    return { status: fault.status, factor: fault.factor };
  }

  /** How many times each fault fired. */
  counts(): Partial<Record<FaultName, number>> {
    return Object.fromEntries(this.fired);
  }

  /** A draw from the fault PRNG, for choices inside a fault (e.g. 500 or 503). */
  draw(): number {
    return this.random();
  }
}

/** Parses `api5xx=0.1,cutDownload=2,slowProcessing=1.0` (a value with a dot is a rate, an integer a count). */
export function parseFaultList(text: string): FaultOptions {
  const faults: FaultOptions = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const match = /^([A-Za-z0-9]+)=([0-9]*\.?[0-9]+)$/.exec(item);
    if (!match) throw new RangeError(`fault "${item}": expected name=value, e.g. api5xx=0.1 or cutDownload=2`);
    const [, name, value] = match as unknown as [string, string, string];
    if (!(FAULT_NAMES as readonly string[]).includes(name)) throw new RangeError(`unknown fault "${name}" (known: ${FAULT_NAMES.join(', ')})`);
    const number = Number(value);
    faults[name as FaultName] = value.includes('.') ? { rate: number } : { count: number };
  }
  return faults;
}
