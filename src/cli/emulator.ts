import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { UsageError, describeError } from '../errors.js';
import { parseFaultList, type FaultOptions } from '../emulator/faults.js';
import { loadRulesFile, resolveMix, type OutcomeMix } from '../emulator/outcomes.js';
import type { EmulatorOptions } from '../emulator/server.js';
import { createLogger } from '../log.js';
import { print } from './context.js';
import { onStopSignals } from './signals.js';

interface EmulatorFlags {
  host: string;
  port: string;
  processingMs: string;
  seed: string;
  mix?: string;
  rules?: string;
  transfer: string;
  faults?: string;
  token?: string;
  rateLimit: string;
  tlsCert?: string;
  tlsKey?: string;
  logLevel: string;
}

function integer(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new UsageError(`${flag}: expected an integer from ${min} to ${max} (got "${value}")`);
  return n;
}

/** `deleted=0.05,protected=0.02` → the mix, checked (shares in [0, 1], sum ≤ 1). */
function parseMix(text: string): Partial<OutcomeMix> {
  const mix: Record<string, number> = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const match = /^([a-z_]+)=([0-9]*\.?[0-9]+)$/.exec(item);
    if (!match) throw new UsageError(`--mix: "${item}" is not name=share`, { hint: '--mix deleted=0.05,protected=0.02,suspended=0.02,deactivated=0.01,scrub_geo=0.01' });
    mix[match[1]!] = Number(match[2]);
  }
  try {
    resolveMix(mix);
  } catch (err) {
    throw new UsageError(`--mix: ${describeError(err)}`);
  }
  return mix;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${describeError(err)}`, { cause: err });
  }
}

/** Turns the flags into emulator options; every bad flag is a UsageError (exit 64). */
function emulatorOptionsFromFlags(flags: EmulatorFlags): EmulatorOptions {
  if (flags.transfer !== 'gcs' && flags.transfer !== 'bytepath') throw new UsageError(`--transfer: expected gcs or bytepath (got "${flags.transfer}")`);
  if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw new UsageError('--tls-cert and --tls-key go together');
  if (flags.token !== undefined && !/^[\x21-\x7e]+$/.test(flags.token)) throw new UsageError('--token: expected printable characters without spaces');
  let faults: FaultOptions | undefined;
  if (flags.faults !== undefined) {
    try {
      faults = parseFaultList(flags.faults);
    } catch (err) {
      throw new UsageError(`--faults: ${describeError(err)}`, { hint: '--faults api5xx=0.1,rate429=3,jobFail=1,slowProcessing=0.5,cutDownload=2,uploadReject=1 (a dot makes a rate, an integer a count)' });
    }
  }
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(flags.logLevel)) throw new UsageError(`--log-level: expected one of ${levels.join(', ')}`);
  return {
    host: flags.host,
    port: integer('--port', flags.port, 0, 65535),
    processingMs: integer('--processing-ms', flags.processingMs, 0),
    seed: flags.seed,
    transfer: flags.transfer,
    rateLimit: { limit: integer('--rate-limit', flags.rateLimit, 1) },
    ...(flags.token !== undefined ? { token: flags.token } : {}),
    ...(flags.mix !== undefined ? { mix: parseMix(flags.mix) } : {}),
    ...(flags.rules !== undefined ? { rules: loadRulesFile(flags.rules) } : {}),
    ...(faults ? { faults } : {}),
    ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: readPem('--tls-cert', flags.tlsCert), key: readPem('--tls-key', flags.tlsKey) } } : {}),
  };
}

export function registerEmulator(program: Command): void {
  program
    .command('emulator')
    .description("serve a local emulator of X's batch compliance API (and its signed storage URLs) until SIGINT/SIGTERM")
    .option('--host <host>', 'address to bind (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', '8787')
    .option('--processing-ms <ms>', 'time from upload to complete', '2000')
    .option('--seed <seed>', 'seed of the deterministic outcomes', 'compliance-sync')
    .option('--mix <shares>', 'share of each outcome, e.g. deleted=0.04,protected=0.02,suspended=0.02,deactivated=0.01,scrub_geo=0.01')
    .option('--rules <file>', 'JSON file pinning outcomes: {"<id>": {"action": "delete", "reason": "protected"} | null}')
    .option('--transfer <mode>', 'gcs (signed storage URLs) or bytepath (2026 api.x.com upload/download paths)', 'gcs')
    .option('--faults <list>', 'fault injection, e.g. api5xx=0.1,cutDownload=2 (rate with a dot, else first N times)')
    .option('--token <token>', 'the bearer token to accept (default: a random one, printed)')
    .option('--rate-limit <n>', 'requests per 15-minute window per endpoint', '150')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate')
    .option('--tls-key <file>', 'and this PEM private key')
    .option('--log-level <level>', 'request log level (one line per request)', 'info')
    .action(async (flags: EmulatorFlags) => {
      const options = emulatorOptionsFromFlags(flags);
      const logger = createLogger(flags.logLevel as LevelWithSilent).child({ component: 'emulator' });
      // The emulator's server loads only for this command (and demo), so the CLI's other commands start fast.
      const { startEmulator } = await import('../emulator/server.js');
      const emulator = await startEmulator({ ...options, logger }).catch((err: unknown) => {
        throw new UsageError(`cannot listen on ${flags.host}:${flags.port}: ${describeError(err)}`, { hint: 'pick another --port, or --port 0 for a free one', cause: err });
      });
      print(`emulator listening on ${emulator.url}`);
      print(`bearer token: ${emulator.token}`);
      print(`transfer ${options.transfer}, processing ${options.processingMs} ms, seed "${options.seed}", rate limit ${options.rateLimit?.limit}/15 min`);
      const stopped = new AbortController();
      const removeHandlers = onStopSignals(stopped, logger);
      try {
        await new Promise<void>((resolve) => stopped.signal.addEventListener('abort', () => resolve(), { once: true }));
      } finally {
        await emulator.close();
        removeHandlers();
        logger.info('emulator stopped');
      }
    });
}
