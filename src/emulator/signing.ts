import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EmulatorJobType } from './outcomes.js';

/** The real service account in X's signed URLs (docs/x-api.md#signed-urls): clients treating URLs as opaque see what they would in production. */
const CREDENTIAL_ACCOUNT = 'complianceapi-public-svc-acct@twttr-compliance-public-prod.iam.gserviceaccount.com';
const UPLOAD_EXPIRES_S = 900;
const DOWNLOAD_EXPIRES_S = 604_800;

export type StorageKind = 'submission' | 'delivery';

function bucketFor(type: EmulatorJobType): string {
  return type === 'tweets' ? 'twttr-tweet-compliance' : 'twttr-user-compliance';
}

/** `20211007T074118Z` */
function googDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function parseGoogDate(value: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : null;
}

export type StorageCheck =
  | { ok: true; expiresAt: number }
  | { ok: false; stringToSign: string };

/**
 * Signs and verifies the emulator's storage URLs and byte-path tokens with a per-process secret. The signature is an
 * HMAC over the object path and every X-Goog-* parameter, so changing any of them (expiry included) breaks it, as
 * with real V4 signatures; the request method and host are left out so one URL serves PUT and the resumable POST.
 */
export class Signer {
  constructor(private readonly secret: Buffer = randomBytes(32)) {}

  /** `/{bucket}/{jobId}/{kind}/{appNum}_{jobId}`: the part of a storage URL the signature covers. */
  objectPath(type: EmulatorJobType, jobId: string, appNum: string, kind: StorageKind): string {
    return `/${bucketFor(type)}/${jobId}/${kind}/${appNum}_${jobId}`;
  }

  storageUrl(origin: string, type: EmulatorJobType, jobId: string, appNum: string, kind: StorageKind, signedAt: number): string {
    const objectPath = this.objectPath(type, jobId, appNum, kind);
    const params = new URLSearchParams({
      'X-Goog-Algorithm': 'GOOG4-RSA-SHA256',
      'X-Goog-Credential': `${CREDENTIAL_ACCOUNT}/${googDate(signedAt).slice(0, 8)}/auto/storage/goog4_request`,
      'X-Goog-Date': googDate(signedAt),
      'X-Goog-Expires': String(kind === 'submission' ? UPLOAD_EXPIRES_S : DOWNLOAD_EXPIRES_S),
      'X-Goog-SignedHeaders': kind === 'submission' ? 'content-type;host' : 'host',
    });
    params.set('X-Goog-Signature', this.hmac(stringToSign(objectPath, params)).toString('hex'));
    return `${origin}${objectPath}?${params.toString()}`;
  }

  /** Checks a storage request's signature; on success says when the URL expires (epoch ms). */
  verifyStorage(objectPath: string, query: URLSearchParams): StorageCheck {
    const toSign = stringToSign(objectPath, query);
    const given = query.get('X-Goog-Signature') ?? '';
    const date = parseGoogDate(query.get('X-Goog-Date') ?? '');
    const expires = Number(query.get('X-Goog-Expires'));
    if (!/^[0-9a-f]{64}$/.test(given) || date === null || !Number.isInteger(expires)) return { ok: false, stringToSign: toSign };
    if (!timingSafeEqual(Buffer.from(given, 'hex'), this.hmac(toSign))) return { ok: false, stringToSign: toSign };
    return { ok: true, expiresAt: date + expires * 1000 };
  }

  /** The opaque `token` of a byte-path URL. */
  token(kind: 'upload' | 'download', jobId: string): string {
    return this.hmac(`bytepath\n${kind}\n${jobId}`).toString('base64url');
  }

  verifyToken(kind: 'upload' | 'download', jobId: string, token: string | null): boolean {
    const expected = Buffer.from(this.token(kind, jobId));
    const given = Buffer.from(token ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private hmac(text: string): Buffer {
    return createHmac('sha256', this.secret).update(text).digest();
  }
}

/** Path plus the sorted X-Goog-* parameters other than the signature. */
function stringToSign(objectPath: string, query: URLSearchParams): string {
  const signed = [...query.entries()]
    .filter(([key]) => /^x-goog-/i.test(key) && key.toLowerCase() !== 'x-goog-signature')
    .map(([key, value]) => `${key.toLowerCase()}=${encodeURIComponent(value)}`)
    .sort();
  return `${objectPath}\n${signed.join('&')}`;
}
