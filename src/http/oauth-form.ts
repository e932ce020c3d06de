import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { OAuthTokenError } from '../errors.js';
import { FIRST_PARTY_CLIENT_ID } from '../sessions/session-manager.js';

/** A form-encoded OAuth request body as `@fastify/formbody` parses it (repeats become arrays). */
export type Form = Record<string, string | string[] | undefined>;

/** The RFC 6749 §5.2 error body, as `/token` and `/revoke` document it. */
export const OAuthErrorSchema = Type.Object({
  error: Type.String({ description: 'RFC 6749 §5.2 error code' }),
  error_description: Type.String(),
  code: Type.Optional(Type.String({ description: 'Gatehouse error code, when more specific than `error`' })),
  mfa_token: Type.Optional(
    Type.String({
      description:
        '`error=mfa_required` only: send it back with `grant_type=urn:gatehouse:params:oauth:grant-type:mfa-otp` ' +
        'and `otp` (a TOTP or recovery code) within MFA_TOKEN_TTL',
    }),
  ),
});

/** True when `body` has the shape `@fastify/formbody` gives a form: strings, or arrays of them. */
function isForm(body: unknown): body is Form {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  return Object.values(body).every(
    (value) =>
      value === undefined ||
      typeof value === 'string' ||
      (Array.isArray(value) && value.every((item) => typeof item === 'string')),
  );
}

/**
 * The body of an OAuth endpoint request, which RFC 6749 §3.2 (and RFC 7009 §2.1) require to be
 * `application/x-www-form-urlencoded`; anything else is `invalid_request`. The OAuth routes use
 * `attachValidation`, so their schema documents the form but does not vouch for it: the body is
 * checked here, and each parameter by {@link formParam}, to answer in RFC 6749 §5.2's format.
 */
export function readForm(request: Pick<FastifyRequest, 'headers' | 'body'>): Form {
  const type = request.headers['content-type'] ?? '';
  const { body } = request;
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded') || !isForm(body)) {
    throw new OAuthTokenError(
      'invalid_request',
      'Send the parameters form-encoded (application/x-www-form-urlencoded).',
    );
  }
  return body;
}

/** Reads one parameter; RFC 6749 §3.2: parameters must not be included more than once. */
export function formParam(form: Form, name: string, required: true): string;
/** Reads one optional parameter (empty counts as absent, RFC 6749 §3.1). */
export function formParam(form: Form, name: string, required: false): string | undefined;
export function formParam(form: Form, name: string, required: boolean): string | undefined {
  const value = form[name];
  if (Array.isArray(value))
    throw new OAuthTokenError('invalid_request', `The ${name} parameter is repeated.`);
  if (value === undefined || value === '') {
    if (required) throw new OAuthTokenError('invalid_request', `The ${name} parameter is missing.`);
    return undefined;
  }
  if (value.length > 4096) throw new OAuthTokenError('invalid_request', `The ${name} parameter is too long.`);
  return value;
}

/** Client credentials sent with HTTP Basic (RFC 6749 §2.3.1: each part form-urlencoded). */
function basicCredentials(request: FastifyRequest): { id: string; secret: string } | 'malformed' | undefined {
  const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(request.headers.authorization ?? '');
  if (match === null)
    return /^basic(\s|$)/i.test(request.headers.authorization ?? '') ? 'malformed' : undefined;
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  try {
    const decode = (part: string) => decodeURIComponent(part.replaceAll('+', ' '));
    return { id: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
  } catch {
    return 'malformed';
  }
}

/**
 * The public client making an OAuth request: its `client_id` (form parameter, else the HTTP Basic
 * user name; RFC 6749 §2.2: VSCHARs), or {@link FIRST_PARTY_CLIENT_ID} when it names none.
 * Clients are public and unregistered for now, so the id is what the client declares: it tells
 * resource servers which app asked (RFC 9068 `client_id`); it authenticates nothing.
 *
 * A client secret (form or HTTP Basic) is refused with `invalid_client`: no confidential client
 * is registered, so a secret can only come from a misconfigured client, which must not believe it
 * authenticated (RFC 6749 §5.2, with `WWW-Authenticate` when Basic was used). Empty secrets are
 * fine: Swagger UI sends `Authorization: Basic` of ":" when its client fields are left empty.
 */
export function publicClientOf(request: FastifyRequest, form: Form): string {
  const basic = basicCredentials(request);
  const formSecret = formParam(form, 'client_secret', false);
  if (basic === 'malformed' || (basic !== undefined && basic.secret !== '') || formSecret !== undefined) {
    throw new OAuthTokenError(
      'invalid_client',
      'Client secrets are not accepted at this endpoint; send no client secret.',
      basic === undefined ? {} : { challenge: { scheme: 'Basic' } },
    );
  }
  const clientId = formParam(form, 'client_id', false) ?? (basic?.id === '' ? undefined : basic?.id);
  if (clientId === undefined) return FIRST_PARTY_CLIENT_ID;
  if (!/^[\x20-\x7E]{1,255}$/.test(clientId))
    throw new OAuthTokenError('invalid_request', 'The client_id parameter is malformed.');
  return clientId;
}
