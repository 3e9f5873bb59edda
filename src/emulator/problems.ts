/**
 * The error bodies the real service sends: v2 problem objects for the JSON API (docs/x-api.md#api-problems), GCS XML for storage (docs/x-api.md#storage-xml-errors).
 * Problem type URIs use api.twitter.com in the GCS era and api.x.com in the 2026 byte-path flow, as the specs of each
 * era do; clients match on the `/2/problems/<name>` suffix.
 */
export interface Problem {
  title: string;
  detail: string;
  type: string;
  status?: number;
  errors?: unknown[];
  [key: string]: unknown;
}

export type ProblemHost = 'https://api.twitter.com' | 'https://api.x.com';

function problemType(host: ProblemHost, name: string): string {
  return `${host}/2/problems/${name}`;
}

export const unauthorized = (): Problem => ({ title: 'Unauthorized', type: 'about:blank', status: 401, detail: 'Unauthorized' });

export const tooManyRequests = (): Problem => ({ title: 'Too Many Requests', detail: 'Too Many Requests', type: 'about:blank', status: 429 });

export function serverError(status: number): Problem {
  const title = status === 503 ? 'Service Unavailable' : status === 502 ? 'Bad Gateway' : 'Internal Server Error';
  return { title, detail: title, type: 'about:blank', status };
}

export const notFoundRoute = (): Problem => ({ title: 'Not Found Error', detail: 'The requested resource could not be found.', type: 'about:blank', status: 404 });

/** One entry of an invalid-request problem: the offending parameter values and a message. */
export interface InvalidParameter {
  parameters: Record<string, string[]>;
  message: string;
}

export function invalidRequest(host: ProblemHost, errors: InvalidParameter[]): Problem {
  return {
    errors,
    title: 'Invalid Request',
    detail: 'One or more parameters to your request was invalid.',
    type: problemType(host, 'invalid-request'),
  };
}

export function conflict(host: ProblemHost, detail = 'You cannot create a new job if one is already in progress.'): Problem {
  return { title: 'Conflict', detail, type: problemType(host, 'conflict'), status: 409 };
}

/** The body of an unknown job id (docs/x-api.md#get-one-job, as X's own mock answers it). */
export function jobNotFound(host: ProblemHost, id: string): { errors: Record<string, string>[] } {
  return {
    errors: [
      {
        value: id,
        detail: `Could not find compliance job with id: [${id}].`,
        title: 'Not Found Error',
        resource_type: 'compliance_job',
        parameter: 'id',
        resource_id: id,
        type: problemType(host, 'resource-not-found'),
      },
    ],
  };
}

/** A byte-path transfer problem (the 2026 flow answers these in problem+json, details unpublished). */
export function transferProblem(status: number, title: string, detail: string, name: string): Problem {
  return { title, detail, type: problemType('https://api.x.com', name), status };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** GCS's XML error body. */
export function storageErrorXml(code: string, message: string, details?: string): string {
  return (
    `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>` +
    (details === undefined ? '' : `<Details>${escapeXml(details)}</Details>`) +
    '</Error>'
  );
}
