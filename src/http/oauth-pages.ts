import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';

/** Escapes text for HTML content and double-quoted attributes (OWASP XSS Prevention, rule 1 and 2). */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * A CSP host-source of a scheme, a plain host and an optional port, or a scheme-source (CSP3 §2.3.1):
 * nothing that could end the directive (`;`), start another policy (`,`) or add a source (space).
 */
const CSP_SOURCE =
  /^(?:https?:\/\/(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:]+\])(?::\d{1,5})?|[a-z][a-z0-9+.-]*:)$/;

/**
 * The CSP source expression for the origin (or private-use scheme) of `uri`, or undefined when it
 * would not be a single well-formed source. Registration already refuses such hosts
 * (`redirectUriProblem`); this is the second lock for URIs stored before that rule (red-team F10).
 */
export function cspSourceOf(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  const source = url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
  return CSP_SOURCE.test(source) ? source : undefined;
}

/**
 * Where a form on our pages may send the browser: its own origin, plus the origin (or private-use
 * scheme) of the redirect URI it ends at. Browsers apply CSP `form-action` to the redirects that
 * follow a form submission too, so without it the answer to the client would be blocked. A source
 * that is not well-formed is left out: the redirect is then blocked, never the policy rewritten.
 */
function formTarget(uri: string | undefined): string {
  const source = uri === undefined ? undefined : cspSourceOf(uri);
  return source === undefined ? '' : ` ${source}`;
}

/**
 * Sends one of the provider's own HTML pages (consent, sign-out, errors): no script at all,
 * `frame-ancestors 'none'` so it cannot be clickjacked (RFC 9700 §4.16, OWASP Clickjacking),
 * never cached (it carries a per-session CSRF token).
 */
export function sendPage(
  reply: FastifyReply,
  status: number,
  title: string,
  body: string,
  formRedirect?: string,
): FastifyReply {
  return (
    reply
      .code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-frame-options', 'DENY')
      // Not helmet's `no-referrer`: with it browsers send `Origin: null` on the form's post, which
      // the Origin check must refuse. `same-origin` still sends nothing to other sites.
      .header('referrer-policy', 'same-origin')
      .header(
        'content-security-policy',
        `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'${formTarget(formRedirect)}; ` +
          "frame-ancestors 'none'; base-uri 'none'",
      )
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
          `<title>${escapeHtml(title)} · Gatehouse</title><link rel="stylesheet" href="/app.css"></head>` +
          `<body><main class="page oauth-page"><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`,
      )
  );
}

/** An error page for requests whose client or redirect URI cannot be trusted (RFC 6749 §4.1.2.1). */
export function sendErrorPage(reply: FastifyReply, status: number, code: string, description: string) {
  return sendPage(
    reply,
    status,
    'This sign-in cannot continue',
    `<p data-testid="oauth-error" data-code="${escapeHtml(code)}">${escapeHtml(description)}</p>` +
      `<p class="aside">Error code: <code>${escapeHtml(code)}</code>. Go back to the app and try again.</p>`,
  );
}

/** Hidden form fields, escaped. */
export function hiddenFields(fields: Record<string, string | undefined>): string {
  return Object.entries(fields)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
}

/**
 * Synchronizer tokens for the provider's HTML forms (OWASP CSRF Prevention Cheat Sheet): an HMAC,
 * under a key of their own derived from SECRET_KEY, over the purpose, the cookie session and
 * every field the form carries, so a token fits one session and one exact request. A plain HTML
 * form cannot send the `X-CSRF-Token` header the API's double-submit scheme uses. Issued under
 * `secretKey`; verified under it or `previousSecretKey` (SECRET_KEY_PREVIOUS), so a form an
 * instance still on the old secret served posts to one on the new secret during a rotation.
 */
export function createFormTokens(secretKey: Uint8Array, previousSecretKey?: Uint8Array) {
  const keyOf = (secret: Uint8Array) =>
    createHmac('sha256', secret).update('gatehouse oauth form v1').digest();
  const key = keyOf(secretKey);
  const keys = previousSecretKey === undefined ? [key] : [key, keyOf(previousSecretKey)];
  const mac = (macKey: Buffer, purpose: string, sessionId: string, fields: readonly (string | undefined)[]) =>
    createHmac('sha256', macKey)
      .update(JSON.stringify([purpose, sessionId, ...fields.map((field) => field ?? null)]))
      .digest('base64url');
  return {
    issue: (purpose: string, sessionId: string, fields: readonly (string | undefined)[]) =>
      mac(key, purpose, sessionId, fields),
    verify(
      token: string | undefined,
      purpose: string,
      sessionId: string,
      fields: readonly (string | undefined)[],
    ) {
      if (token === undefined) return false;
      const presented = Buffer.from(token);
      return keys.some((macKey) => {
        const expected = Buffer.from(mac(macKey, purpose, sessionId, fields));
        return presented.length === expected.length && timingSafeEqual(presented, expected);
      });
    },
  };
}
