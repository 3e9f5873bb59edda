import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/errors.js';
import { codeOfStatus, problemName, problemOf, storageErrorCode, XApiError } from '../../src/xapi/errors.js';
import { parseJob, parseJobList } from '../../src/xapi/parseJob.js';

describe('error mapping', () => {
  it('matches problem types by suffix on either host', () => {
    expect(problemName('https://api.twitter.com/2/problems/conflict')).toBe('conflict');
    expect(problemName('https://api.x.com/2/problems/resource-not-found')).toBe('resource-not-found');
    expect(problemName('about:blank')).toBeUndefined();
  });

  it('lets the problem type win over the status', () => {
    expect(codeOfStatus(400, { type: 'https://api.twitter.com/2/problems/conflict' })).toBe('conflict');
    expect(codeOfStatus(200, { type: 'https://api.x.com/2/problems/resource-not-found' })).toBe('not_found');
    expect(codeOfStatus(403, { type: 'https://api.x.com/2/problems/client-forbidden' })).toBe('forbidden');
  });

  it.each([
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [404, 'not_found'],
    [409, 'conflict'],
    [429, 'rate_limited'],
    [400, 'invalid_request'],
    [503, 'server_error'],
  ] as const)('maps HTTP %i to %s', (status, code) => {
    expect(codeOfStatus(status)).toBe(code);
  });

  it('reads problems at top level and in errors[]', () => {
    expect(problemOf({ title: 'Conflict', detail: 'busy', type: 'x/2/problems/conflict', status: 409 })).toEqual({
      title: 'Conflict',
      detail: 'busy',
      type: 'x/2/problems/conflict',
      status: 409,
    });
    expect(problemOf({ errors: [{ message: 'bad type', parameters: { type: ['wat'] } }], title: 'Invalid Request' }).detail).toBe(
      'bad type',
    );
    expect(problemOf('nonsense')).toEqual({});
  });

  it('maps GCS XML codes', () => {
    const xml = (code: string) => `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>m</Message></Error>`;
    expect(storageErrorCode('upload', 400, xml('ExpiredToken'), {})).toBe('upload_expired');
    expect(storageErrorCode('download', 400, xml('ExpiredToken'), {})).toBe('download_expired');
    expect(storageErrorCode('upload', 403, xml('SignatureDoesNotMatch'), {})).toBe('signature_mismatch');
    expect(storageErrorCode('download', 404, xml('NoSuchKey'), {})).toBe('not_found');
    expect(storageErrorCode('upload', 413, '', {})).toBe('upload_rejected');
    expect(storageErrorCode('upload', 502, '', {})).toBe('server_error');
  });

  it('gives temporary errors exit 75 and credentials errors exit 78, with a hint', () => {
    expect(new XApiError('rate_limited', 'x').exitCode).toBe(EXIT.busy);
    expect(new XApiError('unauthorized', 'x').exitCode).toBe(EXIT.config);
    expect(new XApiError('conflict', 'x').hint).toMatch(/one job per type/);
    expect(JSON.parse(JSON.stringify(new XApiError('not_found', 'gone', { jobId: '1', status: 404 })))).toMatchObject({
      code: 'not_found',
      jobId: '1',
      status: 404,
    });
  });
});

const job = {
  id: '1446017776678801409',
  type: 'tweets',
  status: 'created',
  created_at: '2021-10-07T07:41:18.000Z',
  upload_url: 'https://storage.googleapis.com/u',
  upload_expires_at: '2021-10-07T07:56:18.000Z',
  download_url: 'https://storage.googleapis.com/d',
  download_expires_at: '2021-10-14T07:41:18.000Z',
};

describe('job parsing', () => {
  it('keeps unknown fields and unknown statuses', () => {
    const parsed = parseJob({ ...job, status: 'paused_for_review', estimated_completion: '2021-10-07T08:00:00.000Z' });
    expect(parsed.status).toBe('paused_for_review');
    expect(parsed.estimated_completion).toBe('2021-10-07T08:00:00.000Z');
  });

  it('rejects a job without the fields the client needs', () => {
    expect(() => parseJob({ ...job, upload_url: undefined })).toThrow(XApiError);
    expect(() => parseJob({ ...job, type: 'spaces' })).toThrow(/unknown type/);
  });

  it('reads a list without data or meta as empty', () => {
    expect(parseJobList({ meta: { result_count: 0 } })).toEqual([]);
    expect(parseJobList({})).toEqual([]);
    expect(parseJobList({ data: [job] })).toHaveLength(1);
  });
});
