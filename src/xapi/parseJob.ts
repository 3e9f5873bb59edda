import { JOB_TYPES, type JobType } from '../types.js';
import { XApiError } from './errors.js';
import type { ComplianceJob } from './types.js';

const REQUIRED_STRINGS = ['id', 'status', 'created_at', 'upload_url', 'upload_expires_at', 'download_url', 'download_expires_at'] as const;

/**
 * Checks the fields the client relies on and keeps everything else as sent (tolerant parsing: statuses and extra
 * fields are open sets; IDs stay strings).
 */
export function parseJob(value: unknown): ComplianceJob {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new XApiError('bad_response', 'the server sent a job that is not a JSON object');
  }
  const job = value as Record<string, unknown>;
  const jobId = typeof job.id === 'string' ? job.id : undefined;
  for (const key of REQUIRED_STRINGS) {
    if (typeof job[key] !== 'string') {
      throw new XApiError('bad_response', `the server sent a job without a string "${key}"${jobId ? ` (job ${jobId})` : ''}`, { jobId });
    }
  }
  if (!JOB_TYPES.includes(job.type as JobType)) {
    throw new XApiError('bad_response', `the server sent job ${jobId} with an unknown type ${JSON.stringify(job.type)}`, { jobId });
  }
  return job as ComplianceJob;
}

/** `{data: [...]}` → jobs; a body without `data` (X's empty list) → []. */
export function parseJobList(body: unknown): ComplianceJob[] {
  const data = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).data : undefined;
  if (data === undefined || data === null) return [];
  if (!Array.isArray(data)) throw new XApiError('bad_response', 'the server sent a job list whose "data" is not an array');
  return data.map(parseJob);
}
