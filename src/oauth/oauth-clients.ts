import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { OIDC_SCOPES, SCOPES, type ScopePolicy } from '../accounts/scopes.js';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import { type FieldError, GatehouseError } from '../errors.js';
import type { ClientInfo } from '../sessions/session-manager.js';
import { FIRST_PARTY_CLIENT_ID } from '../sessions/session-manager.js';
import type { OAuthClientRecord, OAuthClientStore } from '../storage/oauth-client-store.js';
import type { RevokedSession } from '../storage/session-store.js';
import { describeDisplayTextRejection, normalizeDisplayText } from '../text/display-text.js';
import type { AsymmetricAlgorithm } from '../tokens/signing-key-material.js';

// Moved to accounts/scopes.ts (sessions need it without importing this module); kept here too.
export { OIDC_SCOPES } from '../accounts/scopes.js';

/**
 * Grant types a registered client may be allowed. No `implicit` and no `password`: RFC 9700 §2.1.2
 * and §2.4 (and OAuth 2.1) forbid them; the password grant stays for the first-party flow only.
 */
export const OAUTH_GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;

/** One of {@link OAUTH_GRANT_TYPES}. */
export type OAuthGrantType = (typeof OAUTH_GRANT_TYPES)[number];

/** Every scope a client registration may list on a server without apps: OpenID Connect's and the core's. */
export const CLIENT_SCOPES: Readonly<Record<string, string>> = { ...OIDC_SCOPES, ...SCOPES };

/** Every scope a client registration may list: OpenID Connect's and the server's (its apps' included). */
export function clientScopes(scopes: ScopePolicy): Readonly<Record<string, string>> {
  return { ...OIDC_SCOPES, ...scopes.descriptions };
}

/**
 * Most clients one installation holds. Only administrators register clients, so this is a guard
 * against a script gone wrong, not against an attacker: the table, the admin listing and the
 * consent look-ups stay small.
 */
export const MAX_OAUTH_CLIENTS = 1000;

/** Most redirect (or post-logout redirect) URIs per client, and the longest one accepted. */
export const MAX_REDIRECT_URIS = 10;
const MAX_URI_LENGTH = 2000;
const MAX_NAME_LENGTH = 100;

/** A registered client as the rest of Gatehouse sees it (never its secret or the secret's hash). */
export interface OAuthClient {
  clientId: string;
  /** Shown to people on the consent page and under "Connected apps". */
  name: string;
  /**
   * `public` clients (SPAs, native apps) hold no secret and must use PKCE; `confidential` ones
   * authenticate at the token endpoint with `client_secret_basic` or `client_secret_post`.
   */
  type: 'public' | 'confidential';
  /** Compared exactly, character for character (RFC 9700 §4.1.3), with the request's. */
  redirectUris: string[];
  /** Where RP-initiated logout may send the browser afterwards (exact match too). */
  postLogoutRedirectUris: string[];
  grantTypes: OAuthGrantType[];
  /** The most a token for this client can carry; a user's role can narrow it further. */
  scopes: string[];
  createdAt: number;
  /**
   * Disabled by an operator: it cannot authenticate, get tokens or start a sign-in, and its
   * tokens stop working; enabling it restores everything but the sessions that ended.
   */
  disabled: boolean;
  /**
   * The JWS algorithm its ID tokens are signed with (`id_token_signed_response_alg`, OpenID
   * Connect Dynamic Client Registration §2): the one it chose, or the installation's default when
   * it chose none (or chose one the installation no longer offers, after a JWT_ALG change).
   */
  idTokenSignedResponseAlg: AsymmetricAlgorithm;
}

/** A registration request; omitted lists take the defaults documented on each member. */
export interface NewOAuthClient {
  name: string;
  /** Required when the grants include `authorization_code`. @default [] */
  redirectUris?: readonly string[] | undefined;
  /** @default [] */
  postLogoutRedirectUris?: readonly string[] | undefined;
  /** A confidential client gets a secret, returned once. @default false */
  confidential?: boolean | undefined;
  /** @default ['authorization_code', 'refresh_token'] */
  grantTypes?: readonly string[] | undefined;
  /** @default ['openid', 'profile', 'email'] */
  scopes?: readonly string[] | undefined;
  /** One of the installation's ID-token algorithms. @default the installation's default (stored as none) */
  idTokenSignedResponseAlg?: string | undefined;
}

/** Who registers or removes a client, for the audit trail: an admin, or the operator's CLI (`null`). */
export interface ClientAdminActor {
  actorId: string | null;
  client?: ClientInfo | undefined;
}

/** Outcome of {@link OAuthClients.authenticate}. Refusals are values; the endpoint answers `invalid_client`. */
export type ClientAuthentication =
  | { ok: true; client: OAuthClient }
  | {
      ok: false;
      reason:
        | 'unknown_client'
        | 'invalid_secret'
        | 'secret_required'
        | 'secret_not_expected'
        | 'client_disabled';
    };

/** Registration, look-up and authentication of OAuth clients (issue 15, item 1). */
export interface OAuthClients {
  /**
   * Registers a client. Returns it with its `clientSecret` when confidential: the only time the
   * secret exists in clear (only its hash is stored). Throws VALIDATION_FAILED (field errors) or
   * TOO_MANY_CLIENTS.
   */
  create(
    input: NewOAuthClient,
    actor: ClientAdminActor,
  ): Promise<{ client: OAuthClient; clientSecret?: string | undefined }>;
  /** Every client, oldest first (at most {@link MAX_OAUTH_CLIENTS}). */
  list(): Promise<OAuthClient[]>;
  /** One client; undefined when unknown. */
  find(clientId: string): Promise<OAuthClient | undefined>;
  /** One client; throws CLIENT_NOT_FOUND when unknown. */
  get(clientId: string): Promise<OAuthClient>;
  /** Removes a client; throws CLIENT_NOT_FOUND when unknown. */
  remove(clientId: string, actor: ClientAdminActor): Promise<void>;
  /**
   * Disables or enables a client (audited `oauth_client_disabled` / `oauth_client_enabled`, in the
   * change's transaction); returns it as it now is. Disabling ends every session holding its
   * tokens and stops its `client_credentials` tokens on every instance (see `afterDisable`).
   * Idempotent: disabling a disabled client changes nothing and writes no audit row. Throws
   * CLIENT_NOT_FOUND when unknown.
   */
  setDisabled(clientId: string, disabled: boolean, actor: ClientAdminActor): Promise<OAuthClient>;
  /**
   * Sets the algorithm of a client's ID tokens (one of the installation's, else VALIDATION_FAILED;
   * null: none chosen, so the installation's default, which follows JWT_ALG);
   * audited `oauth_client_updated`; returns the client as it now is. Tokens already issued keep
   * verifying (the JWK Set publishes every algorithm's keys). Throws CLIENT_NOT_FOUND when unknown.
   */
  setIdTokenAlgorithm(
    clientId: string,
    algorithm: string | null,
    actor: ClientAdminActor,
  ): Promise<OAuthClient>;
  /**
   * Authenticates a client at the token, revocation or introspection endpoint (RFC 6749 §2.3):
   * a confidential client must present its secret, a public one must not present any. The
   * comparison takes the same time whatever the secret (hashes compared with `timingSafeEqual`).
   */
  authenticate(clientId: string, secret: string | undefined): Promise<ClientAuthentication>;
}

/** Dependencies of {@link createOAuthClients}, wired in `createGatehouse`. */
export interface OAuthClientsDeps {
  /** Reads outside a change. */
  clients: Pick<OAuthClientStore, 'findClient' | 'listClients'>;
  /** A change, the sessions it ends and its audit row commit in one transaction of this. */
  transaction: <T>(work: (stores: OAuthClientChangeStores) => Promise<T>) => Promise<T>;
  clock: () => number;
  /**
   * Called after a removal committed (the client's sessions already ended in its transaction, its
   * codes and consents gone with the row, `on delete cascade`): caches forget the client and the
   * ended sessions are announced on every instance. @default nothing
   */
  afterRemove?: (clientId: string, ended: readonly RevokedSession[]) => Promise<unknown>;
  /**
   * Called after a disable or enable committed: caches forget the client on every instance, and
   * the sessions a disable ended in its transaction are announced. @default nothing
   */
  afterDisable?: (clientId: string, disabled: boolean, ended: readonly RevokedSession[]) => Promise<unknown>;
  /** The server's scopes, its apps' included. @default createScopePolicy() (the core's alone) */
  scopes?: ScopePolicy;
  /**
   * The algorithms a client may choose for its ID tokens, the default first (`IdTokenKeys.algorithms`).
   * @default ['ES256', 'RS256'] (JWT_ALG=HS256's)
   */
  idTokenAlgorithms?: readonly AsymmetricAlgorithm[];
  /** Called after a client's ID-token algorithm changed: caches forget the client. @default nothing */
  afterUpdate?: (clientId: string) => Promise<unknown>;
  /**
   * Called after a client was registered with, or changed to, an ID-token algorithm: makes that
   * algorithm's keys now (`IdTokenKeys.keyring`), so they are in every JWK Set before its first ID
   * token. Its failure is the hook's to report: the exchange makes them then. @default nothing
   */
  prepareIdTokenKeys?: (algorithm: AsymmetricAlgorithm) => Promise<unknown>;
}

/** What a client's removal or disable changes, bound to its transaction. */
export interface OAuthClientChangeStores {
  clients: OAuthClientStore;
  audit: Pick<AuditLog, 'record'>;
  /**
   * Ends every live session started for the client (with or without refresh tokens), in this transaction: a removal
   * or disable never commits with the client's sessions still live (they were ended after the
   * commit, and a failure there could not be retried: the client was gone, or already disabled).
   */
  endClientSessions(clientId: string): Promise<RevokedSession[]>;
}

/** SHA-256 (hex) of a client secret: see migration 013a for why a fast hash is right here. */
export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashClientSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Whether `hostname` (as the URL parser writes it) reaches the device itself: `localhost` and any
 * name under it (RFC 6761 §6.3), 127.0.0.0/8, 0.0.0.0, `::1`, `::` and IPv4-mapped loopback
 * (`[::ffff:127.0.0.1]` is written `[::ffff:7f00:1]`). Broader than {@link LOOPBACK_HOSTS}, which
 * lists where plain `http` may be registered: this says where no certificate proves who answers.
 */
function reachesDevice(fqdn: string): boolean {
  // The root's dot is kept by the URL parser: `localhost.` is `localhost`.
  const hostname = fqdn.endsWith('.') ? fqdn.slice(0, -1) : fqdn;
  return (
    LOOPBACK_HOSTS.has(hostname) ||
    hostname.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) ||
    hostname === '0.0.0.0' ||
    hostname === '[::]' ||
    /^\[::ffff:(?:7f[0-9a-f]{2}:[0-9a-f]{1,4}|0:0)\]$/.test(hostname)
  );
}

/**
 * `http://` on a loopback IP literal, an optional port, and the rest of the URI as written: the
 * form whose port RFC 8252 §7.3 lets vary. Only the IP literals, as that section says: `localhost`
 * is NOT RECOMMENDED there (§8.3) and keeps exact matching.
 */
const LOOPBACK_IP_REDIRECT = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?([/?].*)?$/;

/**
 * Whether a redirect URI presented at `/authorize` matches a registered one: the same string
 * (RFC 9700 §4.1.3, OAuth 2.1 §2.3.1), except that for an `http` loopback IP literal the port may
 * differ (the caller applies this to public clients only: native apps, which RFC 8252 is about). RFC 8252 §7.3: the server "MUST allow any port to be specified at the time of the
 * request for loopback IP redirect URIs", since a native app binds an ephemeral port each time.
 * Everything else (host, path, query) is still compared as written, and the port must be one a
 * socket can have (1–65535).
 */
export function redirectUriMatches(registered: string, presented: string): boolean {
  if (registered === presented) return true;
  const want = LOOPBACK_IP_REDIRECT.exec(registered);
  const got = LOOPBACK_IP_REDIRECT.exec(presented);
  if (want === null || got === null) return false;
  const port = got[2] === undefined ? 80 : Number(got[2]);
  return want[1] === got[1] && (want[3] ?? '') === (got[3] ?? '') && port >= 1 && port <= 65_535;
}

/**
 * A new client id: 128 random bits, base64url (unguessable, URL-safe, never equal to the
 * first-party id), never starting with `-`: one in 64 did, and a command line took it for an
 * option (`gatehouse clients delete -Xy…` answered "unknown option", exit 64).
 */
export function newClientId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Whether only the client can receive what is sent to `uri`: an `https` URI on a host other than a
 * loopback one (only the site's holder has its certificate). A private-use scheme, or any loopback
 * address (`https` included: a local process with a locally trusted certificate can bind the
 * port), may be claimed by any app on the device (RFC 8252 §8.6).
 */
export function redirectIdentifiesClient(uri: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return false;
  }
  // Any name or address of the device, not only the three http may use (red-team 2026-12g O1:
  // `https://127.0.0.2/cb` and `https://app.localhost/cb` had consent remembered and `prompt=none`
  // answered with a code, as if only the app could receive it).
  return parsed.protocol === 'https:' && !reachesDevice(parsed.hostname);
}

/**
 * A host as the URL parser writes a plain one (lower case, IDNA already turned into `xn--` labels):
 * dot-separated letter-digit-hyphen labels (RFC 1123 §2.1; this also covers IPv4, which the parser
 * normalises to dotted decimal) or a bracketed IPv6 literal. WHATWG URL lets `;`, `,`, `_`, `!` and
 * more through in a host; the consent page copies a redirect URI's origin into its CSP `form-action`,
 * whose host-source grammar allows only this (CSP3 §2.3.1), so anything else is refused at
 * registration (red-team F10: `https://x.example;frame-ancestors/cb` wrote a CSP directive).
 */
const PLAIN_HOST =
  /^(?:(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:]+\])$/;

/** Parameters the server adds to a redirect (the code response, its errors, RFC 9207, logout). */
const RESPONSE_PARAMETERS = new Set(['code', 'state', 'iss', 'error', 'error_description', 'error_uri']);

/**
 * Why `uri` cannot be a redirect URI, or undefined when it can. Rules: an absolute URI without a
 * fragment (RFC 6749 §3.1.2); `https`, or `http` only on a loopback host (OAuth 2.1 §2.3.1,
 * RFC 8252 §7.3); or a private-use scheme in reverse-domain form for native apps (RFC 8252 §7.1:
 * `com.example.app:/callback`). No user-info, which would let a URI pose as another host; an http(s)
 * host must be a DNS name or an IP address.
 */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.length > MAX_URI_LENGTH) return `must be at most ${MAX_URI_LENGTH} characters`;
  if (/[\s\p{Cc}]/u.test(uri)) return 'must not contain spaces or control characters';
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return 'must be an absolute URI';
  }
  if (uri.includes('#')) return 'must not contain a fragment (RFC 6749 §3.1.2)';
  if (parsed.username !== '' || parsed.password !== '') return 'must not contain user information';
  // RFC 6749 §3.1: a response parameter must not appear twice, and the server adds these to the
  // URI's own query (§3.1.2, §4.1.2, RFC 9207's `iss`): a registered `?code=…&iss=…` would give
  // every response two of each, and most parsers read the registered (first) one.
  const taken = [...parsed.searchParams.keys()].find((name) => RESPONSE_PARAMETERS.has(name));
  if (taken !== undefined) return `must not carry "${taken}" in its query: the server adds it to redirects`;
  if (parsed.port === '0') return 'must not use port 0';
  const scheme = parsed.protocol.slice(0, -1);
  if ((scheme === 'https' || scheme === 'http') && !PLAIN_HOST.test(parsed.hostname)) {
    return 'must have a DNS name or IP address as its host';
  }
  if (scheme === 'https') return undefined;
  if (scheme === 'http') {
    return LOOPBACK_HOSTS.has(parsed.hostname)
      ? undefined
      : 'must use https (http is allowed only on 127.0.0.1, [::1] or localhost)';
  }
  if (/^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$/.test(scheme)) return undefined;
  return 'must use https, http on a loopback host, or a reverse-domain private-use scheme (RFC 8252 §7.1)';
}

function toClient(record: OAuthClientRecord, idTokenAlgorithms: readonly AsymmetricAlgorithm[]): OAuthClient {
  const chosen = idTokenAlgorithms.find((algorithm) => algorithm === record.idTokenSignedResponseAlg);
  return {
    clientId: record.clientId,
    name: record.name,
    type: record.secretHash === null ? 'public' : 'confidential',
    redirectUris: record.redirectUris,
    postLogoutRedirectUris: record.postLogoutRedirectUris,
    grantTypes: record.grantTypes.filter((grant): grant is OAuthGrantType =>
      (OAUTH_GRANT_TYPES as readonly string[]).includes(grant),
    ),
    scopes: record.scopes,
    createdAt: record.createdAt,
    disabled: record.disabledAt !== null,
    idTokenSignedResponseAlg: chosen ?? defaultOf(idTokenAlgorithms),
  };
}

function defaultOf(idTokenAlgorithms: readonly AsymmetricAlgorithm[]): AsymmetricAlgorithm {
  return idTokenAlgorithms[0] ?? 'ES256';
}

/** `algorithm` when it is one of `idTokenAlgorithms`; else a field error naming them. */
function idTokenAlgorithmProblem(
  algorithm: string,
  idTokenAlgorithms: readonly AsymmetricAlgorithm[],
): FieldError | undefined {
  if ((idTokenAlgorithms as readonly string[]).includes(algorithm)) return undefined;
  return {
    field: 'id_token_signed_response_alg',
    message: `${JSON.stringify(algorithm.slice(0, 40))} is not offered; use ${idTokenAlgorithms.join(' or ')}`,
  };
}

interface ValidClient {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: OAuthGrantType[];
  scopes: string[];
  confidential: boolean;
  /** As asked for; null when left out (the default, whatever JWT_ALG becomes). */
  idTokenSignedResponseAlg: string | null;
}

function checkUris(field: string, uris: readonly string[], errors: FieldError[]): string[] {
  if (uris.length > MAX_REDIRECT_URIS) {
    errors.push({ field, message: `must list at most ${MAX_REDIRECT_URIS} URIs` });
    return [...uris];
  }
  uris.forEach((uri, index) => {
    const problem = redirectUriProblem(uri);
    if (problem !== undefined) errors.push({ field: `${field}/${index}`, message: problem });
  });
  return [...new Set(uris)];
}

/** Checks a registration, collecting every problem (one field error each). */
function validate(
  input: NewOAuthClient,
  known: Readonly<Record<string, string>>,
  idTokenAlgorithms: readonly AsymmetricAlgorithm[],
): ValidClient {
  const errors: FieldError[] = [];
  const name = normalizeDisplayText(input.name, MAX_NAME_LENGTH);
  if (!name.ok)
    errors.push({ field: 'name', message: describeDisplayTextRejection(name.reason, MAX_NAME_LENGTH) });
  const redirectUris = checkUris('redirect_uris', input.redirectUris ?? [], errors);
  const postLogoutRedirectUris = checkUris(
    'post_logout_redirect_uris',
    input.postLogoutRedirectUris ?? [],
    errors,
  );
  const confidential = input.confidential ?? false;
  const grantTypes: OAuthGrantType[] = [];
  for (const grant of input.grantTypes ?? ['authorization_code', 'refresh_token']) {
    if (!(OAUTH_GRANT_TYPES as readonly string[]).includes(grant)) {
      errors.push({
        field: 'grant_types',
        message: `${JSON.stringify(grant.slice(0, 40))} is not allowed; use ${OAUTH_GRANT_TYPES.join(', ')} (no implicit or password grant: RFC 9700 §2.1.2, §2.4)`,
      });
    } else if (!grantTypes.includes(grant as OAuthGrantType)) grantTypes.push(grant as OAuthGrantType);
  }
  if ((input.grantTypes ?? ['default']).length === 0)
    errors.push({ field: 'grant_types', message: 'must list at least one grant type' });
  if (grantTypes.includes('client_credentials') && !confidential) {
    // RFC 6749 §4.4: the client credentials grant MUST only be used by confidential clients.
    errors.push({ field: 'grant_types', message: 'client_credentials needs a confidential client' });
  }
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0) {
    errors.push({
      field: 'redirect_uris',
      message: 'the authorization_code grant needs at least one redirect URI',
    });
  }
  const scopes: string[] = [];
  for (const scope of input.scopes ?? ['openid', 'profile', 'email']) {
    if (!Object.hasOwn(known, scope)) {
      errors.push({ field: 'scopes', message: `${JSON.stringify(scope.slice(0, 40))} is not a known scope` });
    } else if (!scopes.includes(scope)) scopes.push(scope);
  }
  const idTokenSignedResponseAlg = input.idTokenSignedResponseAlg ?? null;
  const algorithmProblem =
    idTokenSignedResponseAlg === null
      ? undefined
      : idTokenAlgorithmProblem(idTokenSignedResponseAlg, idTokenAlgorithms);
  if (algorithmProblem !== undefined) errors.push(algorithmProblem);
  if (errors.length > 0 || !name.ok) {
    throw new GatehouseError('VALIDATION_FAILED', 'The client registration is invalid.', { errors });
  }
  return {
    name: name.text,
    redirectUris,
    postLogoutRedirectUris,
    grantTypes,
    scopes,
    confidential,
    idTokenSignedResponseAlg,
  };
}

function notFound(): GatehouseError {
  return new GatehouseError('CLIENT_NOT_FOUND', 'No OAuth client has this id.');
}

function auditEntry(
  event: AuditEntry['event'],
  clientId: string,
  actor: ClientAdminActor,
  sessionsEnded?: number,
  changes?: Record<string, string>,
): AuditEntry {
  return {
    event,
    actorId: actor.actorId,
    targetId: clientId,
    ip: actor.client?.ip ?? null,
    userAgent: actor.client?.userAgent ?? null,
    details: {
      client_id: clientId,
      ...(sessionsEnded === undefined ? {} : { sessions_ended: sessionsEnded }),
      ...changes,
    },
  };
}

/** Creates the {@link OAuthClients} service. */
export function createOAuthClients(deps: OAuthClientsDeps): OAuthClients {
  const { clients, transaction, clock } = deps;
  const known = deps.scopes === undefined ? CLIENT_SCOPES : clientScopes(deps.scopes);
  const idTokenAlgorithms = deps.idTokenAlgorithms ?? ['ES256', 'RS256'];
  const find = async (clientId: string) => {
    // The first-party id is declared, not registered (see FIRST_PARTY_CLIENT_ID); ids are
    // printable ASCII, so anything else cannot name a row and needs no query.
    if (clientId === FIRST_PARTY_CLIENT_ID || !/^[\x21-\x7E]{1,255}$/.test(clientId)) return undefined;
    const record = await clients.findClient(clientId);
    return record === undefined ? undefined : { record, client: toClient(record, idTokenAlgorithms) };
  };

  return {
    async create(input, actor) {
      const valid = validate(input, known, idTokenAlgorithms);
      const clientId = newClientId();
      // 256 random bits (RFC 6749 §10.10: credentials must be infeasible to guess).
      const clientSecret = valid.confidential ? randomBytes(32).toString('base64url') : undefined;
      const record: OAuthClientRecord = {
        clientId,
        name: valid.name,
        secretHash: clientSecret === undefined ? null : hashClientSecret(clientSecret),
        redirectUris: valid.redirectUris,
        postLogoutRedirectUris: valid.postLogoutRedirectUris,
        grantTypes: valid.grantTypes,
        scopes: valid.scopes,
        createdAt: clock(),
        disabledAt: null,
        idTokenSignedResponseAlg: valid.idTokenSignedResponseAlg,
      };
      await transaction(async (stores) => {
        // Counted inside the write's transaction; two concurrent registrations may each see
        // room for one more, which overshoots the cap by at most the admins' concurrency.
        if ((await stores.clients.countClients()) >= MAX_OAUTH_CLIENTS) {
          throw new GatehouseError(
            'TOO_MANY_CLIENTS',
            `At most ${MAX_OAUTH_CLIENTS} OAuth clients can be registered; remove unused ones first.`,
          );
        }
        const inserted = await stores.clients.insertClient(record);
        // 128 random bits never collide in practice; if they did, nothing is overwritten.
        if (!inserted.ok) throw new GatehouseError('INTERNAL_ERROR', 'Client id collision; try again.');
        await stores.audit.record(auditEntry('oauth_client_created', clientId, actor));
      });
      const client = toClient(record, idTokenAlgorithms);
      if (record.idTokenSignedResponseAlg !== null)
        await deps.prepareIdTokenKeys?.(client.idTokenSignedResponseAlg);
      return {
        client,
        ...(clientSecret === undefined ? {} : { clientSecret }),
      };
    },

    async list() {
      return (await clients.listClients(MAX_OAUTH_CLIENTS)).map((record) =>
        toClient(record, idTokenAlgorithms),
      );
    },

    async find(clientId) {
      return (await find(clientId))?.client;
    },

    async get(clientId) {
      const found = await find(clientId);
      if (found === undefined) throw notFound();
      return found.client;
    },

    async remove(clientId, actor) {
      if ((await find(clientId)) === undefined) throw notFound();
      const ended = await transaction(async (stores) => {
        // The row first (its cascade takes the codes, then the consents), then the sessions: the
        // order a disconnect takes them in, so the two cannot deadlock. A code exchange that
        // committed while the cascade waited for its code is read here and ended too.
        if (!(await stores.clients.deleteClient(clientId))) throw notFound();
        const revoked = await stores.endClientSessions(clientId);
        await stores.audit.record(auditEntry('oauth_client_deleted', clientId, actor, revoked.length));
        return revoked;
      });
      await deps.afterRemove?.(clientId, ended);
    },

    async setDisabled(clientId, disabled, actor) {
      const found = await find(clientId);
      if (found === undefined) throw notFound();
      if (found.client.disabled === disabled) return found.client;
      const ended = await transaction(async (stores) => {
        if (!(await stores.clients.setClientDisabled(clientId, disabled ? clock() : null))) throw notFound();
        // Codes approved but not exchanged: a re-enable within their minute must not sign anyone in
        // through them (a code inserted meanwhile waited for this row and is seen here).
        if (disabled) await stores.clients.deleteUnexchangedCodes(clientId);
        // An enable brings no session back: their users sign in again.
        const revoked = disabled ? await stores.endClientSessions(clientId) : [];
        await stores.audit.record(
          auditEntry(
            disabled ? 'oauth_client_disabled' : 'oauth_client_enabled',
            clientId,
            actor,
            disabled ? revoked.length : undefined,
          ),
        );
        return revoked;
      });
      await deps.afterDisable?.(clientId, disabled, ended);
      return { ...found.client, disabled };
    },

    async setIdTokenAlgorithm(clientId, algorithm, actor) {
      const problem = algorithm === null ? undefined : idTokenAlgorithmProblem(algorithm, idTokenAlgorithms);
      if (problem !== undefined) {
        throw new GatehouseError('VALIDATION_FAILED', 'The client change is invalid.', { errors: [problem] });
      }
      const found = await find(clientId);
      if (found === undefined) throw notFound();
      // Repeating the stored choice changes nothing (an implicit default made explicit is a change:
      // it no longer follows JWT_ALG).
      if (found.record.idTokenSignedResponseAlg === algorithm) return found.client;
      await transaction(async (stores) => {
        if (!(await stores.clients.setIdTokenAlgorithm(clientId, algorithm))) throw notFound();
        await stores.audit.record(
          auditEntry('oauth_client_updated', clientId, actor, undefined, {
            id_token_signed_response_alg: algorithm ?? 'default',
          }),
        );
      });
      await deps.afterUpdate?.(clientId);
      const client = toClient({ ...found.record, idTokenSignedResponseAlg: algorithm }, idTokenAlgorithms);
      await deps.prepareIdTokenKeys?.(client.idTokenSignedResponseAlg);
      return client;
    },

    async authenticate(clientId, secret) {
      const found = await find(clientId);
      if (found === undefined) return { ok: false, reason: 'unknown_client' };
      const { record, client } = found;
      // A disabled client is told so only once it proved who it is (a confidential client's
      // secret), so the answer is no oracle for which ids exist or are disabled.
      const enabled = (): ClientAuthentication =>
        client.disabled ? { ok: false, reason: 'client_disabled' } : { ok: true, client };
      if (record.secretHash === null) {
        // RFC 6749 §2.3: a public client has no credentials; a secret means a misconfigured
        // client that must not believe it authenticated.
        return secret === undefined ? enabled() : { ok: false, reason: 'secret_not_expected' };
      }
      if (secret === undefined) return { ok: false, reason: 'secret_required' };
      return secretMatches(secret, record.secretHash) ? enabled() : { ok: false, reason: 'invalid_secret' };
    },
  };
}
