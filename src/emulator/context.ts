import type { IncomingMessage } from 'node:http';
import type { Faults } from './faults.js';
import type { Job, JobStore, Transfer } from './jobs.js';
import type { OutcomeMix, OutcomeRules } from './outcomes.js';
import type { ProblemHost } from './problems.js';
import type { RateLimiter } from './rateLimit.js';
import type { Signer } from './signing.js';
import { UploadParser, type ParsedUpload } from './uploads.js';

/** A GCS resumable upload session: only whole chunks are kept, so an interrupted chunk leaves the offset where it was. */
export interface UploadSession {
  id: string;
  jobId: string;
  parser: UploadParser;
  offset: number;
  total?: number;
  done?: ParsedUpload;
}

/** Everything the route handlers share; built once per emulator. */
export interface EmulatorContext {
  clock: () => number;
  token: string;
  /** The app behind the token (the emulator serves one app) and the per-app number in GCS object names. */
  app: string;
  appNum: string;
  seed: string;
  mix: OutcomeMix;
  rules: OutcomeRules | undefined;
  transfer: Transfer;
  processingMs: number;
  conflictStatus: number;
  unknownJobStatus: 200 | 404;
  maxUploadBytes: number;
  strictContentType: boolean;
  problemHost: ProblemHost;
  scheme: 'http' | 'https';
  /** The emulator's own URL, for requests without a Host header. */
  fallbackHost: string;
  jobs: JobStore;
  limiter: RateLimiter;
  faults: Faults;
  signer: Signer;
  sessions: Map<string, UploadSession>;
  counters: { rateLimited: number };
}

/** Where the client reached us: signed URLs point back at the same origin, whatever host name it used. */
export function originOf(ctx: EmulatorContext, req: IncomingMessage): string {
  return `${ctx.scheme}://${req.headers.host ?? ctx.fallbackHost}`;
}

export function newUploadParser(ctx: EmulatorContext, job: Job): UploadParser {
  return new UploadParser({ type: job.type, seed: ctx.seed, mix: ctx.mix, rules: ctx.rules });
}

/** The upload is complete: processing starts, maybe slowed or doomed by the armed faults. */
export function acceptUpload(ctx: EmulatorContext, job: Job, upload: ParsedUpload): void {
  const slow = ctx.faults.fire('slowProcessing');
  const fail = ctx.faults.fire('jobFail');
  // Slow even when processing is instant (processingMs 0): a factor of at least one second.
  const processingMs = slow ? Math.max(ctx.processingMs, 1000) * (slow.factor ?? 10) : ctx.processingMs;
  ctx.jobs.uploaded(job, upload, processingMs, fail ? 'Internal error: the job could not be processed. Create a new job and upload again.' : undefined);
}
