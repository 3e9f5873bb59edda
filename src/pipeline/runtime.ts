import { realpathSync, statSync } from 'node:fs';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config/load.js';
import { resolveBearerToken } from '../config/token.js';
import type { Logger } from '../log.js';
import { Ledger } from '../store/ledger.js';
import { migrate } from '../store/migrate.js';
import { openStore, requireExistingStore, type Db } from '../store/open.js';
import { assertPreflight } from '../store/preflight.js';
import type { JobType } from '../types.js';
import { ComplianceClient, type ApiObserver } from '../xapi/client.js';
import { RateBudget } from '../xapi/rateBudget.js';
import type { CycleContext } from './context.js';
import { CycleEvents } from './events.js';

export interface Runtime {
  db: Db;
  ledger: Ledger;
  client: ComplianceClient;
  events: CycleEvents;
  clock: Clock;
  /** A cycle context for this runtime with the given signal and options. */
  context(signal: AbortSignal, options?: { confirmDeletions?: boolean }): CycleContext;
  close(): void;
}

/**
 * Builds what cycles need, once per process: the migrated store, the ledger, and one API client whose rate budget
 * every cycle shares (so tweets and users polling together stay inside X's limits). The store must exist, and the
 * preflight of `types` must pass before the ledger is migrated: a bad mapping writes nothing.
 */
export function openRuntime(
  config: Config,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
  options: { types?: readonly JobType[]; observer?: ApiObserver; clock?: Clock } = {},
): Runtime {
  const types = options.types ?? config.schedule.types;
  const clock = options.clock ?? systemClock;
  const clockMs = () => clock.now().getTime();
  const { token, warning } = resolveBearerToken(config, env);
  if (warning) logger.warn(warning);
  requireExistingStore(config);
  const db = openStore(config.store.path);
  try {
    assertPreflight(db, config, types);
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  const ledger = new Ledger(db);
  bindStoreIdentity(ledger, config.store.path, logger);
  const client = new ComplianceClient({
    baseUrl: config.api.baseUrl,
    token,
    timeoutMs: config.api.timeoutSeconds * 1000,
    budget: new RateBudget({ clock: clockMs, sleep: clock.sleep }),
    clock: clockMs,
    sleep: clock.sleep,
    logger,
    observer: options.observer,
  });
  const events = new CycleEvents();
  return {
    db,
    ledger,
    client,
    events,
    clock,
    context: (signal, options = {}) => ({
      db,
      ledger,
      config,
      client,
      logger,
      events,
      signal,
      now: () => clock.now(),
      sleep: clock.sleep,
      confirmDeletions: options.confirmDeletions ?? false,
    }),
    close: () => db.close(),
  };
}

/** The store's identity follows where it lives: a copy takes its own (see Ledger.bindIdentity), and says so. */
function bindStoreIdentity(ledger: Ledger, storePath: string, logger: Logger): void {
  const file = realpathSync(storePath);
  const { dev, ino } = statSync(file, { bigint: true });
  const { storeId, previous, boundPath } = ledger.bindIdentity({ path: file, file: `${dev}:${ino}` });
  if (previous === null) return;
  if (boundPath === null) logger.info({ storeId }, 'store identity bound to this file');
  else {
    logger.warn(
      { storeId, previousStoreId: previous, boundPath, path: file },
      'this store is a copy (or was moved): it takes a new identity for its job names, so it never uses the jobs of the store it was copied from; its ledger is kept',
    );
  }
}
