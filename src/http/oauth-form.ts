import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { OAuthTokenError } from '../errors.js';
import type { AddressAdmission } from '../oauth/client-credentials.js';
import type { OAuthClient, OAuthClients } from '../oauth/oauth-clients.js';
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

/** The client making an OAuth request, after client authentication. */
export interface RequestingClient {
  /** Its `client_id`: a registered client's, a declared unregistered one, or {@link FIRST_PARTY_CLIENT_ID}. */
  clientId: string;
  /** The registered client, when `clientId` names one (authenticated if confidential). */
  registered: OAuthClient | undefined;
}

/**
 * `invalid_client`: 401 with a `Basic` challenge when the client tried the `Authorization` header,
 * else 400, decided where every OAuth error is sent (`sendOAuthError`, RFC 6749 §5.2).
 */
function invalidClient(description: string): OAuthTokenError {
  return new OAuthTokenError('invalid_client', description);
}

/**
 * Authenticates the client of a token, revocation or introspection request (RFC 6749 §2.3):
 * `client_secret_basic` (HTTP Basic, each part form-urlencoded) or `client_secret_post`
 * (`client_id` + `client_secret` in the form), never both (§2.3: one method per request). A
 * registered confidential client must present its secret (compared as a hash in constant time);
 * a registered public client must present none and is identified by `client_id` alone (PKCE
 * protects its codes). An unregistered `client_id` is only a label for the first-party flows
 * (RFC 9068 `client_id` claim) and authenticates nothing; it may not carry a secret either.
 * Every refusal is `invalid_client` (401 with a `Basic` challenge after HTTP Basic, else 400), with
 * the same description whether the client is unknown or its secret wrong. Empty secrets count as absent: Swagger UI sends `Authorization: Basic` of ":".
 */
export async function authenticateClient(
  request: FastifyRequest,
  form: Form,
  clients: Pick<OAuthClients, 'authenticate'>,
): Promise<RequestingClient> {
  const basic = basicCredentials(request);
  if (basic === 'malformed') throw invalidClient('The HTTP Basic client credentials are malformed.');
  const formSecret = formParam(form, 'client_secret', false);
  const formId = formParam(form, 'client_id', false);
  const basicSecret = basic?.secret === '' ? undefined : basic?.secret;
  const basicId = basic?.id === '' ? undefined : basic?.id;
  if (basicSecret !== undefined && formSecret !== undefined) {
    throw new OAuthTokenError('invalid_request', 'Use one client authentication method, not two.');
  }
  if (basicId !== undefined && formId !== undefined && basicId !== formId) {
    throw new OAuthTokenError('invalid_request', 'The client_id differs from the HTTP Basic user name.');
  }
  const clientId = formId ?? basicId;
  const secret = basicSecret ?? formSecret;
  if (clientId === undefined) {
    if (secret !== undefined) throw invalidClient('A client secret needs a client_id.');
    return { clientId: FIRST_PARTY_CLIENT_ID, registered: undefined };
  }
  if (!/^[\x20-\x7E]{1,255}$/.test(clientId))
    throw new OAuthTokenError('invalid_request', 'The client_id parameter is malformed.');
  const result = await clients.authenticate(clientId, secret);
  if (result.ok) return { clientId, registered: result.client };
  if (result.reason === 'unknown_client') {
    // Unregistered ids stay usable as labels by public first-party callers; with a secret they
    // can only be a misconfigured client that must not believe it authenticated.
    if (secret === undefined) return { clientId, registered: undefined };
    throw invalidClient('Client authentication failed.');
  }
  if (result.reason === 'client_disabled') {
    throw invalidClient('This client is disabled.');
  }
  if (result.reason === 'secret_required') {
    throw invalidClient('This client is confidential: authenticate with its secret.');
  }
  throw invalidClient('Client authentication failed.');
}

/** A limit on failed client authentications per address (the grant's, introspection's). */
export interface AuthenticationFailureLimit {
  /** Reads only: refused once the address failed too often. */
  admitAddress(ip: string): Promise<AddressAdmission>;
  recordAuthenticationFailure(ip: string): Promise<void>;
}

/**
 * Runs `authenticate` behind a limit on failed client authentications per address: a refused
 * address gets 429 `temporarily_unavailable` before any look-up, and only an `invalid_client`
 * counts, so a client's own traffic never fills the limit (nobody can spend it from elsewhere).
 */
export async function limitAuthenticationFailures<T>(
  request: FastifyRequest,
  limit: AuthenticationFailureLimit,
  authenticate: () => Promise<T>,
): Promise<T> {
  const address = await limit.admitAddress(request.ip);
  if (!address.ok) {
    throw OAuthTokenError.throttled('TOO_MANY_REQUESTS', address.description, address.retryAfterSeconds);
  }
  try {
    return await authenticate();
  } catch (error) {
    if (error instanceof OAuthTokenError && error.error === 'invalid_client') {
      await limit.recordAuthenticationFailure(request.ip);
    }
    throw error;
  }
}

/**
 * {@link authenticateClient}, behind {@link limitAuthenticationFailures} only when the request
 * presents a client secret (a non-empty one, or malformed HTTP Basic credentials): RFC 6749 §10.10 /
 * §2.3.1, guessing client credentials is guessing passwords. Every grant of `/token` and `/revoke`
 * use it: only the client_credentials grant was limited, so the code and refresh grants were an
 * unmetered secret oracle (red-team 2026-12g O3). A request that presents no secret (a public
 * client, a first-party label, Swagger UI's empty Basic credentials, the plain password grant)
 * cannot guess one, reads no counter, and is never refused for someone else's guesses at its
 * address (a public client's revocation at logout included).
 */
export function authenticateClientLimited(
  request: FastifyRequest,
  form: Form,
  clients: Pick<OAuthClients, 'authenticate'>,
  limit: AuthenticationFailureLimit,
): Promise<RequestingClient> {
  const basic = basicCredentials(request);
  const presentsSecret =
    basic === 'malformed' ||
    (basic !== undefined && basic.secret !== '') ||
    (formParam(form, 'client_secret', false) ?? '') !== '';
  if (!presentsSecret) return authenticateClient(request, form, clients);
  return limitAuthenticationFailures(request, limit, () => authenticateClient(request, form, clients));
}

/** {@link confidentialClient} behind {@link limitAuthenticationFailures}. */
export function authenticateConfidentialClient(
  request: FastifyRequest,
  form: Form,
  clients: Pick<OAuthClients, 'authenticate'>,
  limit: AuthenticationFailureLimit,
  description: string,
): Promise<OAuthClient> {
  return limitAuthenticationFailures(request, limit, async () =>
    confidentialClient(await authenticateClient(request, form, clients), description),
  );
}

/**
 * Counts one request of an authenticated client against its allowance (`admitClient` of the
 * endpoint's limits); 429 `temporarily_unavailable` with `Retry-After` beyond it.
 */
export async function admitAuthenticatedClient(
  limit: { admitClient(clientId: string): Promise<AddressAdmission> },
  clientId: string,
): Promise<void> {
  const admitted = await limit.admitClient(clientId);
  if (!admitted.ok) {
    throw OAuthTokenError.throttled('TOO_MANY_REQUESTS', admitted.description, admitted.retryAfterSeconds);
  }
}

/**
 * The registered confidential client that authenticated, or `invalid_client`: for requests only
 * such a client may make (the client credentials grant, RFC 6749 §4.4.2; introspection, RFC 7662
 * §2.1). A public client or a bare `client_id` proves nothing about who is asking.
 */
export function confidentialClient(client: RequestingClient, description: string): OAuthClient {
  if (client.registered?.type === 'confidential') return client.registered;
  throw invalidClient(description);
}
