import { readFileSync } from 'node:fs';
import { UsageError, describeError } from '../errors.js';
import { parseId } from '../types.js';

/**
 * What the emulator says about each uploaded ID. The outcome is a pure function of (type, id, seed, mix, rules),
 * so reruns, restarts and tests computing the expected store independently all agree.
 *
 * Vocabulary (GCS era, docs/x-api.md#gcs-era-vocabulary): `delete` with reason `deleted`, `protected`, `suspended` or
 * `deactivated` (also for tweets, where the default policy deletes the row), and `scrub_geo`/`scrub_geo`.
 * The byte-path mode (docs/x-api.md#byte-path-era-vocabulary) reports geo removal as `scrub_geo`/`geo_scrubbed`: see `forTransfer`.
 */
export type OutcomeMix = { deleted: number; protected: number; suspended: number; deactivated: number; scrub_geo: number };

export interface Outcome {
  action: string;
  reason: string;
}

/** A pinned result: action and reason, optionally the record's timestamps. */
export interface OutcomeRecordFields extends Outcome {
  created_at?: string;
  redacted_at?: string | null;
}

/** Pinned outcomes by canonical ID; `null` pins an ID as compliant (no record). */
export type OutcomeRules = Map<string, OutcomeRecordFields | null>;

export type EmulatorJobType = 'tweets' | 'users';

/** About one ID in ten needs action, in the proportions seen in real samples (suspensions and deletions lead). */
export const DEFAULT_MIX: Readonly<OutcomeMix> = { deleted: 0.04, protected: 0.02, suspended: 0.02, deactivated: 0.01, scrub_geo: 0.01 };

const MIX_KEYS = ['deleted', 'protected', 'suspended', 'deactivated', 'scrub_geo'] as const;

/** The five outcomes a mix can draw, in the order their shares are stacked on [0, 1). */
export const MIX_OUTCOMES: readonly Outcome[] = [
  { action: 'delete', reason: 'deleted' },
  { action: 'delete', reason: 'protected' },
  { action: 'delete', reason: 'suspended' },
  { action: 'delete', reason: 'deactivated' },
  { action: 'scrub_geo', reason: 'scrub_geo' },
];

/** Defaults filled in and checked: every share in [0, 1], their sum ≤ 1. Throws RangeError otherwise. */
export function resolveMix(mix: Partial<OutcomeMix> = {}): OutcomeMix {
  const resolved = { ...DEFAULT_MIX };
  for (const [key, value] of Object.entries(mix)) {
    if (!(MIX_KEYS as readonly string[]).includes(key)) throw new RangeError(`unknown outcome "${key}" in mix (known: ${MIX_KEYS.join(', ')})`);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new RangeError(`mix share ${key} must be a number in [0, 1] (got ${String(value)})`);
    }
    resolved[key as keyof OutcomeMix] = value;
  }
  const sum = MIX_KEYS.reduce((total, key) => total + resolved[key], 0);
  if (sum > 1 + 1e-9) throw new RangeError(`mix shares sum to ${sum.toFixed(4)}, more than 1`);
  return resolved;
}

/** Cumulative upper bounds of the mix, for the hot loop. */
export function mixThresholds(mix: OutcomeMix): number[] {
  let total = 0;
  return MIX_KEYS.map((key) => (total += mix[key]));
}

/**
 * cyrb53 (a public-domain 53-bit string hash), split so that the prefix `seed \0 type \0` is hashed once and the ID
 * bytes are fed straight from the upload buffer without making a string per line.
 */
export interface HashState {
  h1: number;
  h2: number;
}

export function hashStart(prefix: string): HashState {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return { h1, h2 };
}

/** Finishes the hash over `bytes[start, end)` (ASCII, so equal to hashing the same characters) → [0, 1). */
export function hashBytesUnit(state: HashState, bytes: Uint8Array, start: number, end: number): number {
  let h1 = state.h1;
  let h2 = state.h2;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return finish(h1, h2);
}

export function hashStringUnit(state: HashState, text: string): number {
  let h1 = state.h1;
  let h2 = state.h2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return finish(h1, h2);
}

function finish(h1: number, h2: number): number {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)) / 9007199254740992;
}

/** The hash prefix that makes outcomes depend on seed and type. */
export function outcomePrefix(type: EmulatorJobType, seed: string): string {
  return `${seed}\u0000${type}\u0000`;
}

/** The mix outcome index for a hash value, or -1 for compliant. */
export function pickOutcome(unit: number, thresholds: readonly number[]): number {
  for (let i = 0; i < thresholds.length; i++) if (unit < thresholds[i]!) return i;
  return -1;
}

/**
 * Pure: same inputs, same answer, in every process. null = compliant (no record).
 * `id` is a decimal ID (canonicalised like `parseId`, so `007` and `7` agree); anything else is compliant
 * (the byte-path mode reports it as an `invalid_id` error record instead).
 */
export function outcomeFor(
  type: EmulatorJobType,
  id: string,
  seed: string,
  mix?: Partial<OutcomeMix>,
  rules?: OutcomeRules,
): Outcome | null {
  const canonical = parseId(id);
  if (canonical === null) return null;
  if (rules?.has(canonical)) {
    const rule = rules.get(canonical);
    return rule ? { action: rule.action, reason: rule.reason } : null;
  }
  const index = pickOutcome(hashStringUnit(hashStart(outcomePrefix(type, seed)), canonical), mixThresholds(resolveMix(mix)));
  return index < 0 ? null : { ...MIX_OUTCOMES[index]! };
}

/** The outcome in the vocabulary of a transfer mode: the 2026 byte-path flow says `geo_scrubbed` (docs/x-api.md#byte-path-era-vocabulary). */
export function forTransfer(outcome: Outcome, transfer: 'gcs' | 'bytepath'): Outcome {
  if (transfer === 'bytepath' && outcome.action === 'scrub_geo' && outcome.reason === 'scrub_geo') {
    return { action: 'scrub_geo', reason: 'geo_scrubbed' };
  }
  return outcome;
}

/**
 * Reads a rules file: `{"<id>": {"action": "delete", "reason": "protected", "created_at"?: …, "redacted_at"?: …} | null}`.
 * Throws UsageError naming the file and the bad entry.
 */
export function loadRulesFile(path: string): OutcomeRules {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`rules file ${path}: ${describeError(err)}`, { hint: 'pass a JSON object mapping IDs to {"action","reason"} or null', cause: err });
  }
  return parseRules(parsed, `rules file ${path}`);
}

/** Validates rules given as a plain object (the rules file's content). */
function parseRules(value: unknown, where = 'rules'): OutcomeRules {
  const fail = (message: string): never => {
    throw new UsageError(`${where}: ${message}`, { hint: 'map each ID to {"action": "...", "reason": "..."} or null' });
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('must be a JSON object keyed by ID');
  const rules: OutcomeRules = new Map();
  for (const [key, rule] of Object.entries(value as Record<string, unknown>)) {
    const id = parseId(key);
    if (id === null) fail(`key "${key}" is not a decimal ID of 1–19 digits`);
    if (rule === null) {
      rules.set(id!, null);
      continue;
    }
    if (typeof rule !== 'object' || Array.isArray(rule)) fail(`${key}: must be an object or null`);
    const fields = rule as Record<string, unknown>;
    if (typeof fields.action !== 'string' || fields.action === '') fail(`${key}.action: must be a non-empty string`);
    if (typeof fields.reason !== 'string' || fields.reason === '') fail(`${key}.reason: must be a non-empty string`);
    for (const stamp of ['created_at', 'redacted_at'] as const) {
      const v = fields[stamp];
      if (v !== undefined && v !== null && typeof v !== 'string') fail(`${key}.${stamp}: must be a string`);
    }
    rules.set(id!, {
      action: fields.action as string,
      reason: fields.reason as string,
      ...(typeof fields.created_at === 'string' ? { created_at: fields.created_at } : {}),
      ...(fields.redacted_at !== undefined ? { redacted_at: fields.redacted_at as string | null } : {}),
    });
  }
  return rules;
}
