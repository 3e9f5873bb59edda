import type { Config } from '../config/load.js';
import { compareIds, parseId, type ActionTaken, type Id } from '../types.js';

/** Why a line of a results file did nothing (docs/architecture.md#what-a-result-does-to-the-store, last row). */
export type RejectKind =
  | 'malformed_json'
  | 'not_an_object'
  | 'invalid_id'
  | 'error_record'
  | 'unknown_action'
  | 'missing_reason'
  | 'outside_shard';

/** Actions X reports (docs/x-api.md#gcs-era-vocabulary, docs/x-api.md#byte-path-era-vocabulary); `action` is an open set, so anything else is rejected, not guessed. */
const KNOWN_ACTIONS = ['delete', 'scrub_geo', 'rehydrate'] as const;
type KnownAction = (typeof KNOWN_ACTIONS)[number];

/** A validated result with what it will do to the store. */
export interface ResultRecord {
  id: Id;
  reason: string;
  taken: ActionTaken;
  /** compliance_state a mark writes (null unless taken is 'mark'). */
  state: string | null;
}

export type Policy = Config['reconcile']['policy'];

/** The mark written for an edit: the owner should refetch the tweet. */
export const EDITED_STATE = 'edited';

/**
 * Validates one parsed line into a record or a reject kind. `id` must be a JSON string of 1–19 digits: a JSON number
 * above 2^53 has already lost its value when parsed, so a numeric id is rejected whatever its size.
 */
export function toResultRecord(
  value: unknown,
  policy: Policy,
  range?: { first: Id; last: Id },
): ResultRecord | RejectKind {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not_an_object';
  const v = value as Record<string, unknown>;
  const id = parseId(v.id);
  if (id === null) return 'invalid_id';
  // The 2026 byte-path flow reports unusable input lines as error records (docs/x-api.md#byte-path-era-vocabulary).
  if (v.error !== undefined && v.error !== null) return 'error_record';
  const action = v.action;
  if (typeof action !== 'string' || !(KNOWN_ACTIONS as readonly string[]).includes(action)) return 'unknown_action';
  const reason = v.reason;
  if (typeof reason !== 'string' || reason === '') return 'missing_reason';
  if (range && (compareIds(id, range.first) < 0 || compareIds(id, range.last) > 0)) return 'outside_shard';
  const taken = actionTaken(action as KnownAction, reason, policy);
  const state = taken === 'mark' ? (action === 'rehydrate' || reason === 'tweet_edited' ? EDITED_STATE : reason) : null;
  return { id, reason, taken, state };
}

/** The policy decides per reason; a reason it does not name falls back on what the action says. */
export function actionTaken(action: KnownAction, reason: string, policy: Policy): ActionTaken {
  const byReason = Object.hasOwn(policy, reason) ? policy[reason] : undefined;
  if (byReason) return byReason;
  return action === 'rehydrate' ? 'mark' : action;
}
