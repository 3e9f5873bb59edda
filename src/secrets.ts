/**
 * The last line of defence for secrets in free text. The token stays out of logs and errors by construction (only
 * the API client holds it; URLs pass through redactUrl), but a server may echo what it received — an Authorization
 * header, a signed URL — inside its own error text, and that text becomes our error messages and log lines.
 * XApiError passes every server-provided text through `redactSecrets`; the logger runs it over every line it writes.
 */

/** Secrets this process holds (the bearer token, after each reload too); their literal text is never shown. */
const known = new Set<string>();

/** Registers a secret whose literal text must never appear in an error or a log line. */
export function rememberSecret(secret: string): void {
  // A very short "token" would redact ordinary words; real bearer tokens are dozens of characters.
  if (secret.length >= 8) known.add(secret);
}

const BEARER = /\b(Bearer\s+)[A-Za-z0-9\-._~+/%=]+/gi;
/** Query parameters that make a URL a credential (as in redactUrl), wherever they appear in text. */
const SIGNED_QUERY = /([?&](?:x-goog-signature|x-goog-credential|token|upload_id|signature|sig)=)[^&\s"'<>\\]+/gi;
export const REDACTED = '[redacted]';

/** `text` with every known secret, bearer credential and signed-URL query value replaced. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out.replace(BEARER, `$1${REDACTED}`).replace(SIGNED_QUERY, '$1REDACTED');
}
