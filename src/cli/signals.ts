import type { Logger } from '../log.js';

/**
 * Two-stage stop: the first SIGINT/SIGTERM aborts the controller (the pipeline finishes its current batch or step and
 * leaves the ledger consistent); a second one exits at once. Returns a function that removes the handlers.
 */
export function onStopSignals(controller: AbortController, logger: Logger): () => void {
  const handler = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      logger.warn({ signal }, 'second stop signal: exiting now');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    logger.info({ signal }, 'stopping after the current step (send again to exit at once)');
    controller.abort(new Error(`stopped by ${signal}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
