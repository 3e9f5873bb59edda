import type { Db } from './open.js';

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

type Row = Record<string, unknown>;
const toDelivery = (row: Row): HookDelivery => ({
  id: Number(row.id),
  hook: row.hook as HookName,
  cycleId: Number(row.cycle_id),
  state: row.state as DeliveryState,
  payloadJson: (row.payload_json as string | null) ?? null,
  idsFile: (row.ids_file as string | null) ?? null,
  attempts: Number(row.attempts),
  lastError: (row.last_error as string | null) ?? null,
  createdAt: row.created_at as string,
  updatedAt: row.updated_at as string,
});

/** The ledger of hook deliveries (migrations/0003_hooks_and_confirmations.sql). */
export class HookDeliveries {
  private readonly s;

  constructor(db: Db) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      // A cycle closed again after a crash records nothing new: its delivery is already there.
      record: p(
        `INSERT INTO cs_hook_deliveries (hook, cycle_id, state, payload_json, ids_file, created_at, updated_at)
         VALUES (?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (hook, cycle_id) DO NOTHING`,
      ),
      pending: p("SELECT * FROM cs_hook_deliveries WHERE state = 'pending' ORDER BY id"),
      attempted: p('UPDATE cs_hook_deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?'),
      delivered: p("UPDATE cs_hook_deliveries SET state = 'delivered', payload_json = NULL, updated_at = ? WHERE id = ?"),
      failed: p("UPDATE cs_hook_deliveries SET state = 'failed', updated_at = ? WHERE id = ?"),
      recent: p('SELECT * FROM cs_hook_deliveries ORDER BY id DESC LIMIT ?'),
      totals: p('SELECT hook, state, count(*) AS n, sum(attempts) AS attempts FROM cs_hook_deliveries GROUP BY hook, state'),
    };
  }

  record(hook: HookName, cycleId: number, payloadJson: string, idsFile: string | null, now: Date): void {
    this.s.record.run(hook, cycleId, payloadJson, idsFile, now.toISOString(), now.toISOString());
  }

  pending(): HookDelivery[] {
    return (this.s.pending.all() as Row[]).map(toDelivery);
  }

  /** One attempt made; `error` null when it succeeded. */
  attempted(id: number, error: string | null, now: Date): void {
    this.s.attempted.run(error, now.toISOString(), id);
  }

  delivered(id: number, now: Date): void {
    this.s.delivered.run(now.toISOString(), id);
  }

  failed(id: number, now: Date): void {
    this.s.failed.run(now.toISOString(), id);
  }

  /** The latest deliveries, newest first, without their payloads. */
  recent(limit: number): Omit<HookDelivery, 'payloadJson'>[] {
    return (this.s.recent.all(limit) as Row[]).map((row) => {
      const { payloadJson: _payload, ...rest } = toDelivery(row);
      return rest;
    });
  }

  /** Deliveries and attempts per hook and state, for the metrics. */
  totals(): { hook: HookName; state: DeliveryState; deliveries: number; attempts: number }[] {
    return (this.s.totals.all() as { hook: HookName; state: DeliveryState; n: bigint; attempts: bigint | null }[]).map((row) => ({
      hook: row.hook,
      state: row.state,
      deliveries: Number(row.n),
      attempts: Number(row.attempts ?? 0),
    }));
  }
}
