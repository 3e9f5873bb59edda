import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../pipeline/runtime.js';
import { Metrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './server.js';

/**
 * metrics.listen, if set: the Metrics to build the runtime's client with (its observer), and `start` to serve them
 * once the runtime is open. Both are no-ops when metrics are off.
 */
export function metricsFor(config: Config): {
  metrics: Metrics | undefined;
  start(runtime: Runtime, currentConfig: () => Config, logger: Logger): Promise<MetricsServer | undefined>;
} {
  const listen = config.metrics.listen;
  const metrics = listen ? new Metrics() : undefined;
  return {
    metrics,
    async start(runtime, currentConfig, logger) {
      if (!metrics || !listen) return undefined;
      metrics.attach({ db: runtime.db, config: currentConfig }, runtime.events);
      return startMetricsServer(metrics, listen, logger);
    },
  };
}
