import { createHash } from 'node:crypto';
import type { EmulatorJobType } from './outcomes.js';
import { buildResults } from './results.js';
import type { ParsedUpload } from './uploads.js';

export type JobStatus = 'created' | 'in_progress' | 'complete' | 'failed' | 'expired';
export type Transfer = 'gcs' | 'bytepath';

const SNOWFLAKE_EPOCH = 1288834974657n;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const UPLOAD_WINDOW_MS = 15 * MINUTE;
const DOWNLOAD_WINDOW_MS = 7 * DAY;
/** Jobs stay listed a week past their download window, then are forgotten (the real list keeps "recent" jobs). */
const RETENTION_MS = DOWNLOAD_WINDOW_MS + 7 * DAY;

export interface Job {
  id: string;
  app: string;
  type: EmulatorJobType;
  name?: string | undefined;
  resumable: boolean;
  status: JobStatus;
  error?: string | undefined;
  createdAt: number;
  uploadExpiresAt: number;
  downloadExpiresAt: number;
  uploadUrl: string;
  downloadUrl: string;
  uploadedAt?: number;
  /** How long processing takes for this job (processingMs, times slowProcessing's factor). */
  processingMs?: number;
  /** Set at upload by the jobFail fault: the job ends failed with this error instead of complete. */
  failWith?: string | undefined;
  completedAt?: number;
  upload?: ParsedUpload;
  results?: { body: Buffer; md5: Buffer };
}

export interface JobJson {
  id: string;
  type: EmulatorJobType;
  name?: string;
  resumable: boolean;
  status: JobStatus;
  error?: string;
  created_at: string;
  upload_url: string;
  upload_expires_at: string;
  download_url: string;
  download_expires_at: string;
}

/** `.000Z` timestamps, as every recorded job has (created_at is whole seconds). */
function apiTime(ms: number): string {
  return new Date(ms).toISOString();
}

export function jobJson(job: Job): JobJson {
  return {
    id: job.id,
    type: job.type,
    ...(job.name !== undefined ? { name: job.name } : {}),
    resumable: job.resumable,
    status: job.status,
    ...(job.error !== undefined ? { error: job.error } : {}),
    created_at: apiTime(job.createdAt),
    upload_url: job.uploadUrl,
    upload_expires_at: apiTime(job.uploadExpiresAt),
    download_url: job.downloadUrl,
    download_expires_at: apiTime(job.downloadExpiresAt),
  };
}

export interface NewJob {
  app: string;
  type: EmulatorJobType;
  name?: string | undefined;
  resumable: boolean;
  /** Signs the job's URLs once its id and creation time are known; later reads return them byte for byte. */
  urls(id: string, createdAt: number): { uploadUrl: string; downloadUrl: string };
}

/**
 * The jobs of every app, with the lazy state machine of docs/x-api.md#what-the-emulator-models: each read first applies what the clock says happened
 *   created --upload--> in_progress --(processing time)--> complete | failed (jobFail)
 *   created --(now > upload_expires_at)--> expired;  created | in_progress --cancel--> failed ("cancelled")
 */
export class JobStore {
  private readonly jobs = new Map<string, Job>();
  private lastId = 0n;
  private sequence = 0n;
  readonly created: Record<EmulatorJobType, number> = { tweets: 0, users: 0 };

  constructor(
    private readonly clock: () => number,
    private readonly seed: string,
    private readonly transfer: Transfer,
  ) {}

  /** The active (created or in_progress) job of this type for the app, if any. */
  active(app: string, type: EmulatorJobType): Job | undefined {
    return this.all(app).find((job) => job.type === type && (job.status === 'created' || job.status === 'in_progress'));
  }

  create(spec: NewJob): Job {
    const now = this.clock();
    const createdAt = Math.floor(now / 1000) * 1000;
    const id = this.nextId(now);
    const job: Job = {
      id,
      app: spec.app,
      type: spec.type,
      name: spec.name,
      resumable: spec.resumable,
      status: 'created',
      createdAt,
      uploadExpiresAt: createdAt + UPLOAD_WINDOW_MS,
      downloadExpiresAt: createdAt + DOWNLOAD_WINDOW_MS,
      ...spec.urls(id, createdAt),
    };
    this.jobs.set(id, job);
    this.created[spec.type]++;
    return job;
  }

  /** A job by id whichever app owns it (storage and byte-path URLs carry their own credential), state brought up to date. */
  get(id: string): Job | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    this.refresh(job);
    return this.jobs.get(id);
  }

  /** An app's jobs, newest first, state brought up to date. */
  all(app: string): Job[] {
    const jobs: Job[] = [];
    for (const job of [...this.jobs.values()]) {
      this.refresh(job);
      if (job.app === app && this.jobs.has(job.id)) jobs.push(job);
    }
    return jobs.sort((a, b) => b.createdAt - a.createdAt || (BigInt(b.id) > BigInt(a.id) ? 1 : -1));
  }

  /** Every job, for tests and stats. */
  everyJob(): Job[] {
    for (const job of [...this.jobs.values()]) this.refresh(job);
    return [...this.jobs.values()];
  }

  /** The upload arrived: processing starts now. */
  uploaded(job: Job, upload: ParsedUpload, processingMs: number, failWith?: string): void {
    job.status = 'in_progress';
    job.uploadedAt = this.clock();
    job.processingMs = processingMs;
    job.failWith = failWith;
    job.upload = upload;
  }

  /** Cancels an unfinished job; false when it has already finished. */
  cancel(job: Job): boolean {
    this.refresh(job);
    if (job.status !== 'created' && job.status !== 'in_progress') return false;
    job.status = 'failed';
    job.error = 'cancelled';
    job.upload = undefined;
    return true;
  }

  /** The job's results file, built once on first need (only complete jobs have one). */
  results(job: Job): { body: Buffer; md5: Buffer } {
    if (!job.results) {
      const upload = job.upload;
      const body = buildResults({
        type: job.type,
        jobId: job.id,
        seed: this.seed,
        transfer: this.transfer,
        events: upload?.events ?? [],
        invalid: upload?.invalid ?? [],
        completedAt: job.completedAt ?? this.clock(),
      });
      job.results = { body, md5: createHash('md5').update(body).digest() };
      // The outcomes live on in the body; the parsed upload is no longer needed.
      if (upload) job.upload = { ...upload, events: [], invalid: [] };
    }
    return job.results;
  }

  private refresh(job: Job): void {
    const now = this.clock();
    if (now > job.createdAt + RETENTION_MS) {
      this.jobs.delete(job.id);
      return;
    }
    if (job.status === 'created' && now > job.uploadExpiresAt) {
      job.status = 'expired';
    } else if (job.status === 'in_progress' && job.uploadedAt !== undefined && now >= job.uploadedAt + (job.processingMs ?? 0)) {
      job.completedAt = job.uploadedAt + (job.processingMs ?? 0);
      if (job.failWith !== undefined) {
        job.status = 'failed';
        job.error = job.failWith;
        job.upload = undefined;
      } else {
        job.status = 'complete';
      }
    }
  }

  /** Snowflake-shaped ids from the clock, strictly increasing even if the clock stalls or steps back. */
  private nextId(now: number): string {
    const time = BigInt(Math.max(0, Math.floor(now))) - SNOWFLAKE_EPOCH;
    let id = ((time > 0n ? time : 0n) << 22n) | (this.sequence++ & 0xfffn);
    if (id <= this.lastId) id = this.lastId + 1n;
    this.lastId = id;
    return id.toString();
  }
}
