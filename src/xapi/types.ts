import type { JobType } from '../types.js';

/** X's documented statuses; the open tail keeps unknown future values instead of failing on them (docs/x-api.md#job-statuses). */
export type ComplianceJobStatus = 'created' | 'in_progress' | 'complete' | 'failed' | 'expired' | (string & {});

/**
 * A compliance job as X returns it. Unknown fields are kept. `upload_url`/`download_url` are credentials
 * (signed): log them only through redactUrl.
 */
export interface ComplianceJob {
  id: string;
  type: JobType;
  name?: string;
  status: ComplianceJobStatus;
  resumable?: boolean;
  created_at: string;
  upload_url: string;
  upload_expires_at: string;
  download_url: string;
  download_expires_at: string;
  error?: string;
  [k: string]: unknown;
}

/** The rate-limited API endpoints, each with its own window at X. */
export type Endpoint = 'create' | 'get' | 'list' | 'cancel';
