import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { Config } from '../config/load.js';
import { describeError } from '../errors.js';
import { redactUrl, type Logger } from '../log.js';
import type { CycleSummary } from '../pipeline/events.js';
import { HookDeliveries, type HookDelivery, type HookName } from '../store/hookDeliveries.js';
import type { Db } from '../store/open.js';
import { abortableSleep, type Sleep } from '../clock.js';
import { collectDeletedIds, type ShardResults } from './deletedIds.js';

export interface HookContext {
  db: Db;
  config: Config;
  logger: Logger;
  signal: AbortSignal;
  now: () => Date;
  sleep?: Sleep;
}

type HookTarget = NonNullable<Config['hooks']['onCycleClosed']>;

/** What hooks.onCycleClosed receives on stdin or by POST. */
export interface CycleClosedPayload {
  event: 'cycle_closed';
  store: string;
  storeId: string;
  type: CycleSummary['type'];
  cycleId: number;
  summary: CycleSummary;
}

/** What hooks.onDeletions receives: the stored IDs the cycle deleted, as decimal strings, or the file that lists them. */
export interface DeletionsPayload {
  event: 'deletions';
  store: string;
  storeId: string;
  type: CycleSummary['type'];
  cycleId: number;
  /** The content table the rows were deleted from. */
  table: string;
  count: number;
  ids: string[] | null;
  idsFile: string | null;
  /** Users only: reconcile.cascadeUsers also deleted the tweets of these authors. */
  authorTweetsDeleted: boolean;
  complete: boolean;
}

/**
 * Records what the configured hooks are to be told about a cycle about to close — pending, in the ledger — so that a
 * crash between closing and delivering still delivers on the next run. Recording twice (a crash before the close, then
 * a resume) keeps the first record.
 */
export async function recordHookDeliveries(ctx: HookContext, summary: CycleSummary, shards: readonly ShardResults[]): Promise<void> {
  const { hooks } = ctx.config;
  if (!hooks.onCycleClosed && !hooks.onDeletions) return;
  try {
    await recordDeliveries(ctx, summary, shards);
  } catch (err) {
    // The cycle's work is done and must close; what downstream is not told is said loudly instead.
    ctx.logger.error({ cycle: summary.cycleId, type: summary.type, err: describeError(err) }, 'hook deliveries could not be recorded; the hooks will not hear of this cycle');
  }
}

async function recordDeliveries(ctx: HookContext, summary: CycleSummary, shards: readonly ShardResults[]): Promise<void> {
  const { hooks } = ctx.config;
  const deliveries = new HookDeliveries(ctx.db);
  const storeId = String(ctx.db.prepare('SELECT store_id FROM cs_store').pluck().get());
  const base = { store: ctx.config.store.path, storeId, type: summary.type, cycleId: summary.cycleId };
  const now = ctx.now();
  if (hooks.onCycleClosed) {
    const payload: CycleClosedPayload = { event: 'cycle_closed', ...base, summary };
    deliveries.record('onCycleClosed', summary.cycleId, JSON.stringify(payload), null, now);
  }
  if (hooks.onDeletions) {
    const deleted = await collectDeletedIds(ctx.config, summary.type, summary.cycleId, shards);
    if (deleted.count > 0) {
      const payload: DeletionsPayload = {
        event: 'deletions',
        ...base,
        table: ctx.config.store.tables[summary.type].table,
        count: deleted.count,
        ids: deleted.ids,
        idsFile: deleted.idsFile,
        authorTweetsDeleted: summary.type === 'users' && ctx.config.reconcile.cascadeUsers,
        complete: deleted.complete,
      };
      deliveries.record('onDeletions', summary.cycleId, JSON.stringify(payload), deleted.idsFile, now);
    }
  }
}

/** Deliveries under way in this process: two cycles closing together must not deliver the same one twice. */
const inFlight = new Set<number>();

/**
 * Delivers every pending delivery: each attempt bounded by hooks.timeoutSeconds, up to hooks.maxAttempts with
 * backoff between them. A failure is logged and recorded (`status` shows it), never thrown: the cycle is closed and
 * stays so. A stop (the signal) leaves the delivery pending for the next run.
 */
export async function deliverPendingHooks(ctx: HookContext): Promise<void> {
  const deliveries = new HookDeliveries(ctx.db);
  for (const delivery of deliveries.pending()) {
    if (ctx.signal.aborted) return;
    if (inFlight.has(delivery.id)) continue;
    inFlight.add(delivery.id);
    try {
      await deliverOne(ctx, deliveries, delivery);
    } finally {
      inFlight.delete(delivery.id);
    }
  }
}

async function deliverOne(ctx: HookContext, deliveries: HookDeliveries, delivery: HookDelivery): Promise<void> {
  const { hooks } = ctx.config;
  const target = hooks[delivery.hook];
  const log = ctx.logger.child({ component: 'hooks', hook: delivery.hook, cycle: delivery.cycleId });
  if (!target) {
    // The hook was removed from the config since: nobody is left to tell.
    deliveries.attempted(delivery.id, `hooks.${delivery.hook} is no longer configured`, ctx.now());
    deliveries.failed(delivery.id, ctx.now());
    log.warn('hook removed from the config before its delivery; recorded as failed');
    return;
  }
  const sleep = ctx.sleep ?? abortableSleep;
  const timeoutMs = hooks.timeoutSeconds * 1000;
  for (let attempt = delivery.attempts + 1; attempt <= hooks.maxAttempts; attempt++) {
    if (ctx.signal.aborted) return;
    let error: string | null = null;
    try {
      await send(target, delivery.payloadJson ?? '{}', timeoutMs, delivery.hook, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) return;
      error = (err as Error).message;
    }
    deliveries.attempted(delivery.id, error, ctx.now());
    if (error === null) {
      deliveries.delivered(delivery.id, ctx.now());
      if (delivery.idsFile) await rm(delivery.idsFile, { force: true });
      log.info({ target: describeTarget(target), attempt }, 'hook delivered');
      return;
    }
    if (attempt === hooks.maxAttempts) {
      deliveries.failed(delivery.id, ctx.now());
      log.error({ target: describeTarget(target), attempts: attempt, err: error, idsFile: delivery.idsFile ?? undefined }, 'hook delivery failed; giving up (see `status`)');
      return;
    }
    const waitMs = Math.min(60_000, 500 * 2 ** (attempt - 1));
    log.warn({ target: describeTarget(target), attempt, err: error, waitMs }, 'hook delivery failed; retrying');
    await sleep(waitMs, ctx.signal).catch(() => undefined);
  }
}

/** A target as logs and `status` may show it: the program, or the URL with its secret query values redacted. */
export function describeTarget(target: HookTarget): string {
  return 'command' in target ? target.command[0]! : redactUrl(target.url);
}

function send(target: HookTarget, payload: string, timeoutMs: number, hook: HookName, signal: AbortSignal): Promise<void> {
  return 'command' in target ? runCommand(target.command, payload, timeoutMs, hook, signal) : post(target.url, payload, timeoutMs, signal);
}

/** Runs the command without a shell, the payload on stdin; success is exit 0 within the time. */
function runCommand(argv: readonly string[], payload: string, timeoutMs: number, hook: HookName, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, COMPLIANCE_SYNC_HOOK: hook },
      signal,
    });
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-500);
    });
    // A command that does not read its stdin closes the pipe; that is its business, not a failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(payload);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${argv[0]}: ${describeError(err)}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${argv[0]} did not finish within ${timeoutMs / 1000} s (killed)`));
      else if (code === 0) resolve();
      else reject(new Error(`${argv[0]} exited with ${code ?? sig}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`));
    });
  });
}

/** POSTs the payload; success is a 2xx answer within the time. */
async function post(url: string, payload: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: payload,
      redirect: 'error',
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
  } catch (err) {
    const cause = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
    throw new Error(`POST ${redactUrl(url)}: ${cause}`);
  }
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new Error(`POST ${redactUrl(url)}: HTTP ${response.status}`);
}
