import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../pipeline/runtime.js';
import type { Metrics } from './metrics.js';
import type { MetricsServer } from './server.js';

/**
 * metrics.listen, if set: the Metrics to build the runtime's client with (its observer), and `start` to serve them
 * once the runtime is open. With metrics off both are no-ops, and prom-client is not even loaded (a daemon without
 * metrics carries none of its heap).
 */
export async function metricsFor(config: Config): Promise<{
  metrics: Metrics | undefined;
  start(runtime: Runtime, currentConfig: () => Config, logger: Logger): Promise<MetricsServer | undefined>;
}> {
  const listen = config.metrics.listen;
  if (!listen) return { metrics: undefined, start: async () => undefined };
  const [{ Metrics }, { startMetricsServer }] = await Promise.all([import('./metrics.js'), import('./server.js')]);
  const metrics = new Metrics();
  return {
    metrics,
    async start(runtime, currentConfig, logger) {
      metrics.attach({ db: runtime.db, config: currentConfig }, runtime.events);
      return startMetricsServer(metrics, listen, logger);
    },
  };
}
