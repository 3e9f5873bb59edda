import { hashStart, hashStringUnit, forTransfer, type EmulatorJobType, type OutcomeRecordFields } from './outcomes.js';
import { seededRandom } from './random.js';
import type { UploadEvent } from './uploads.js';

/** Twitter's snowflake epoch (2010-11-04T01:42:54.657Z). */
const SNOWFLAKE_EPOCH = 1288834974657n;
/** Before snowflakes (tweets from Nov 2010, users from 2013) IDs carry no time: pick one between Twitter's start and then. */
const TWITTER_START = Date.parse('2006-03-21T20:50:14.000Z');
const SNOWFLAKE_START = Number(SNOWFLAKE_EPOCH);
/** Snowflakes start around 2.9e16 (17 digits); shorter IDs are sequential. */
const SNOWFLAKE_MIN_DIGITS = 17;

export interface ResultsInput {
  type: EmulatorJobType;
  jobId: string;
  seed: string;
  transfer: 'gcs' | 'bytepath';
  events: readonly UploadEvent[];
  invalid: readonly string[];
  /** Epoch ms the job completed: deletion times lie between the record's created_at and this. */
  completedAt: number;
}

/** created_at of an ID in epoch ms: its snowflake time, or a stable pseudo-random pre-snowflake time. */
function idCreatedAt(type: EmulatorJobType, id: string, seed: string): number {
  if (id.length >= SNOWFLAKE_MIN_DIGITS) return Number((BigInt(id) >> 22n) + SNOWFLAKE_EPOCH);
  const unit = hashStringUnit(hashStart(`${seed}\u0000${type}\u0000created\u0000`), id);
  return TWITTER_START + Math.floor(unit * (SNOWFLAKE_START - TWITTER_START));
}

/** The per-type timestamp styles of real result files (docs/x-api.md#results-format): tweets `…39.022Z`, users `…59+00:00`. */
function formatResultTime(type: EmulatorJobType, ms: number): string {
  const iso = new Date(ms).toISOString();
  return type === 'tweets' ? iso : `${iso.slice(0, 19)}+00:00`;
}

/** One record, keys in the order real files use. */
function resultRecord(
  type: EmulatorJobType,
  id: string,
  outcome: OutcomeRecordFields,
  seed: string,
  transfer: 'gcs' | 'bytepath',
  completedAt: number,
): Record<string, unknown> {
  const { action, reason } = forTransfer(outcome, transfer);
  const createdMs = idCreatedAt(type, id, seed);
  const record: Record<string, unknown> = { id, action, created_at: outcome.created_at ?? formatResultTime(type, createdMs) };
  let redacted: string | null | undefined = outcome.redacted_at;
  // Real files carry redacted_at only for deletions (deleted, deactivated), never for suspensions.
  if (redacted === undefined && action === 'delete' && (reason === 'deleted' || reason === 'deactivated')) {
    const unit = hashStringUnit(hashStart(`${seed}\u0000${type}\u0000redacted\u0000`), id);
    redacted = formatResultTime(type, createdMs + Math.floor(unit * Math.max(0, completedAt - createdMs)));
  }
  if (redacted !== undefined) record.redacted_at = redacted;
  if (transfer === 'bytepath' && action === 'delete' && reason === 'deleted' && redacted !== undefined) record.deleted_at = redacted;
  record.reason = reason;
  return record;
}

/**
 * The results file of a job, built once: NDJSON in a deterministic per-job shuffled order, with a blank line as the
 * third line and at some of the 20 shard joins (real files are composites of 20 parts), LF endings, final newline.
 * Byte-path jobs also answer non-ID lines with `{"id": <line>, "error": "invalid_id"}`.
 */
export function buildResults(input: ResultsInput): Buffer {
  const lines: string[] = input.events.map((event) =>
    JSON.stringify(resultRecord(input.type, event.id, event.outcome, input.seed, input.transfer, input.completedAt)),
  );
  if (input.transfer === 'bytepath') for (const line of input.invalid) lines.push(JSON.stringify({ id: line, error: 'invalid_id' }));
  if (lines.length === 0) return Buffer.alloc(0);
  const random = seededRandom(`${input.seed}\u0000results\u0000${input.jobId}`);
  for (let i = lines.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = lines[i]!;
    lines[i] = lines[j]!;
    lines[j] = swap;
  }
  // Encoded in pieces of a few MiB: one string of the whole file breaks V8's string limit (~512 MiB, ~4M lines).
  const pieces: Buffer[] = [];
  let pending = '';
  const part = Math.ceil(lines.length / 20);
  lines.forEach((line, index) => {
    pending += `${line}\n`;
    const shardJoin = index > 2 && (index + 1) % part === 0 && index + 1 < lines.length && random() < 0.5;
    if ((index === 1 && lines.length > 2) || shardJoin) pending += '\n';
    if (pending.length >= 1 << 23) {
      pieces.push(Buffer.from(pending));
      pending = '';
    }
  });
  pieces.push(Buffer.from(pending));
  return Buffer.concat(pieces);
}
