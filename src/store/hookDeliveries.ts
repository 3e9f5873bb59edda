import type { Db } from './open.js';
import { perConnection } from './perConnection.js';

export type HookName = 'onCycleClosed' | 'onDeletions';
export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface HookDelivery {
  id: number;
  hook: HookName;
  cycleId: number;
  state: DeliveryState;
  payloadJson: string | null;
  idsFile: string | null;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

interface DeliveryRow {
  id: bigint;
  hook: HookName;
  cycle_id: bigint;
  state: DeliveryState;
  payload_json: string | null;
  ids_file: string | null;
  attempts: bigint;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

const DELIVERY_COLUMNS = 'id, hook, cycle_id, state, payload_json, ids_file, attempts, last_error, created_at, updated_at';

const toDelivery = (row: DeliveryRow): HookDelivery => ({
  id: Number(row.id),
  hook: row.hook,
  cycleId: Number(row.cycle_id),
  state: row.state,
  payloadJson: row.payload_json,
  idsFile: row.ids_file,
  attempts: Number(row.attempts),
  lastError: row.last_error,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const statementsOf = perConnection((db: Db) => ({
  // A cycle closed again after a crash records nothing new: its delivery is already there.
  record: db.prepare<[hook: HookName, cycleId: number, payloadJson: string, idsFile: string | null, createdAt: string, updatedAt: string]>(
    `INSERT INTO cs_hook_deliveries (hook, cycle_id, state, payload_json, ids_file, created_at, updated_at)
     VALUES (?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (hook, cycle_id) DO NOTHING`,
  ),
  pending: db.prepare<[], DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM cs_hook_deliveries WHERE state = 'pending' ORDER BY id`),
  attempted: db.prepare<[error: string | null, at: string, id: number]>(
    'UPDATE cs_hook_deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?',
  ),
  delivered: db.prepare<[at: string, id: number]>("UPDATE cs_hook_deliveries SET state = 'delivered', payload_json = NULL, updated_at = ? WHERE id = ?"),
  failed: db.prepare<[at: string, id: number]>("UPDATE cs_hook_deliveries SET state = 'failed', updated_at = ? WHERE id = ?"),
  recent: db.prepare<[limit: number], DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM cs_hook_deliveries ORDER BY id DESC LIMIT ?`),
  totals: db.prepare<[], { hook: HookName; state: DeliveryState; n: bigint; attempts: bigint | null }>(
    'SELECT hook, state, count(*) AS n, sum(attempts) AS attempts FROM cs_hook_deliveries GROUP BY hook, state',
  ),
}));

/** The ledger of hook deliveries (migrations/0003_hooks_and_confirmations.sql), prepared once per connection. */
export class HookDeliveries {
  private readonly statements;

  constructor(db: Db) {
    this.statements = statementsOf(db);
  }

  record(hook: HookName, cycleId: number, payloadJson: string, idsFile: string | null, now: Date): void {
    this.statements.record.run(hook, cycleId, payloadJson, idsFile, now.toISOString(), now.toISOString());
  }

  pending(): HookDelivery[] {
    return this.statements.pending.all().map(toDelivery);
  }

  /** One attempt made; `error` null when it succeeded. */
  attempted(id: number, error: string | null, now: Date): void {
    this.statements.attempted.run(error, now.toISOString(), id);
  }

  delivered(id: number, now: Date): void {
    this.statements.delivered.run(now.toISOString(), id);
  }

  failed(id: number, now: Date): void {
    this.statements.failed.run(now.toISOString(), id);
  }

  /** The latest deliveries, newest first, without their payloads. */
  recent(limit: number): Omit<HookDelivery, 'payloadJson'>[] {
    return this.statements.recent.all(limit).map((row) => {
      const { payloadJson: _payload, ...rest } = toDelivery(row);
      return rest;
    });
  }

  /** Deliveries and attempts per hook and state, for the metrics. */
  totals(): { hook: HookName; state: DeliveryState; deliveries: number; attempts: number }[] {
    return this.statements.totals.all().map((row) => ({
      hook: row.hook,
      state: row.state,
      deliveries: Number(row.n),
      attempts: Number(row.attempts ?? 0),
    }));
  }
}
