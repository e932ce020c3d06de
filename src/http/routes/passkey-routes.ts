import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { GatehouseError } from '../../errors.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { MAX_PASSKEY_TOKEN_LENGTH } from '../../mfa/passkey-challenge.js';
import { MAX_PASSKEYS_PER_ACCOUNT } from '../../mfa/passkeys.js';
import type { PasskeyRecord } from '../../mfa/storage/passkey-store.js';
import { describeDisplayTextRejection, normalizeDisplayText } from '../../text/display-text.js';
import { callerOf } from '../caller.js';
import type { CookiePolicy } from '../cookies.js';
import { ANONYMOUS, type CsrfGuard } from '../csrf.js';
import { currentCsrfBinding } from '../csrf-binding.js';
import { keepingDeviceCookie } from '../device-cookie.js';
import { enforceAddressRateLimit, refundAddressRateLimit } from '../rate-limit.js';
import { errorResponses, FACTOR_CHANGE_NOTE, NoBody, problemRef } from '../schemas.js';
import { authOf } from './me-routes.js';
import { selfAudit } from './mfa-routes.js';

// WebAuthn's JSON forms (§5.1 `toJSON()`, as @simplewebauthn/browser sends them). Lengths bound the
// work a request can ask for: honest values are far shorter (an attestation object with a "none"
// statement is a few hundred bytes).
const B64 = (maxLength: number) =>
  Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$' });
const Transports = Type.Array(Type.String({ maxLength: 32 }), { maxItems: 8 });
const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]));
const ExtensionResults = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 16 });

const RegistrationCredential = Type.Object(
  {
    id: B64(1024),
    rawId: B64(1024),
    type: Type.Literal('public-key'),
    authenticatorAttachment: Attachment,
    clientExtensionResults: ExtensionResults,
    response: Type.Object({
      clientDataJSON: B64(4096),
      attestationObject: B64(16384),
      authenticatorData: Type.Optional(B64(8192)),
      transports: Type.Optional(Transports),
      publicKeyAlgorithm: Type.Optional(Type.Integer()),
      publicKey: Type.Optional(B64(4096)),
    }),
  },
  {
    description:
      'The credential `navigator.credentials.create()` answered, as JSON (`PublicKeyCredential.toJSON()`)',
  },
);

const AuthenticationCredential = Type.Object(
  {
    id: B64(1024),
    rawId: B64(1024),
    type: Type.Literal('public-key'),
    authenticatorAttachment: Attachment,
    clientExtensionResults: ExtensionResults,
    response: Type.Object({
      clientDataJSON: B64(4096),
      authenticatorData: B64(8192),
      signature: B64(2048),
      userHandle: Type.Optional(B64(256)),
    }),
  },
  {
    description:
      'The assertion `navigator.credentials.get()` answered, as JSON (`PublicKeyCredential.toJSON()`)',
  },
);

const PasskeyToken = Type.String({
  minLength: 1,
  maxLength: MAX_PASSKEY_TOKEN_LENGTH,
  description: 'The `passkey_token` the options answered with (single use, valid MFA_TOKEN_TTL)',
});

const OptionsAnswer = (description: string) =>
  Type.Object({
    options: Type.Object({}, { additionalProperties: true, description }),
    passkey_token: Type.String({ description: 'Send it back with the authenticator’s answer' }),
  });

const PasskeyView = Type.Object({
  id: Type.String({ description: 'Credential id (base64url)' }),
  name: Type.String(),
  device_type: Type.Union([Type.Literal('singleDevice'), Type.Literal('multiDevice')], {
    description: '`multiDevice`: may be synced to other devices (backup eligible)',
  }),
  backed_up: Type.Boolean({ description: 'Synced (backed up) as of its last use' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

function toView(passkey: PasskeyRecord): Static<typeof PasskeyView> {
  return {
    id: passkey.id,
    name: passkey.name,
    device_type: passkey.deviceType,
    backed_up: passkey.backedUp,
    created_at: new Date(passkey.createdAt).toISOString(),
    last_used_at: passkey.lastUsedAt === null ? null : new Date(passkey.lastUsedAt).toISOString(),
  };
}

/** Most code points in a passkey's label. */
const PASSKEY_NAME_MAX_LENGTH = 64;

/**
 * A label for a new passkey: the one the user typed, under the display-text rule every shown name
 * follows (`full_name`'s: a NUL byte reached PostgreSQL, which refuses it, as a 500; bidi
 * overrides and line breaks would be shown in the list), else the browser family from its user
 * agent. Throws VALIDATION_FAILED for a label the rule refuses.
 */
function passkeyName(typed: string | undefined, userAgent: string | undefined): string {
  if (typed !== undefined) {
    const name = normalizeDisplayText(typed, PASSKEY_NAME_MAX_LENGTH);
    if (name.ok) return name.text;
    if (name.reason !== 'empty') {
      const message = describeDisplayTextRejection(name.reason, PASSKEY_NAME_MAX_LENGTH);
      throw new GatehouseError('VALIDATION_FAILED', `name ${message}`, {
        errors: [{ field: 'name', message }],
      });
    }
  }
  const ua = userAgent ?? '';
  const family = ['Edg', 'Firefox', 'Chrome', 'Safari'].find((word) => ua.includes(word));
  return family === undefined ? 'Passkey' : `Passkey (${family === 'Edg' ? 'Edge' : family})`;
}

/** `/users/me/passkeys…`: list, register and remove passkeys; every change needs a recent sign-in. */
export function registerPasskeyRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { passkeys } = gatehouse;
  // A passkey is a way into the account: never an OAuth app's to register or remove, even with
  // `me` (red-team 2026-12c H2: an app's server answered the ceremony with an authenticator of its own).
  const guard = app.auth.require({ scopes: ['me'], firstParty: true });

  app.get(
    '/users/me/passkeys',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Your passkeys',
        response: { 200: Type.Array(PasskeyView), ...errorResponses },
      },
    },
    async (request) => (await passkeys.list(authOf(request).user.id)).map(toView),
  );

  app.post(
    '/users/me/passkeys/options',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Start registering a passkey',
        description:
          'Answers `options` for `navigator.credentials.create()` (a discoverable credential, user verification ' +
          'required, relying-party id = the host name of PUBLIC_URL) and a `passkey_token` to send back with the ' +
          `answer to \`POST /users/me/passkeys\`. Needs a recent sign-in (STEP_UP_MAX_AGE, else 401 RFC 9470); at most ` +
          `${MAX_PASSKEYS_PER_ACCOUNT} passkeys per account (409 \`PASSKEY_LIMIT_REACHED\`); 403 \`EMAIL_NOT_VERIFIED\` ` +
          "until the account's address is verified (a second factor is set up only on a proven address)." +
          FACTOR_CHANGE_NOTE,
        response: {
          200: OptionsAnswer('PublicKeyCredentialCreationOptionsJSON (WebAuthn §5.4)'),
          ...errorResponses,
          409: problemRef,
        },
      },
    },
    async (request, reply) => {
      const { user, sessionId } = authOf(request);
      const started = await passkeys.registrationOptions(user, sessionId);
      return reply
        .header('cache-control', 'no-store')
        .send({ options: started.options, passkey_token: started.token });
    },
  );

  app.post(
    '/users/me/passkeys',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Register a passkey',
        description:
          'The authenticator’s answer to the options of `POST /users/me/passkeys/options`, with its `passkey_token` ' +
          '(single use, same session). Needs a recent sign-in. 400 `PASSKEY_INVALID` when the answer does not verify ' +
          '(wrong challenge, origin or rp id, no user verification) or the token expired; 409 ' +
          '`PASSKEY_ALREADY_REGISTERED`.' +
          FACTOR_CHANGE_NOTE,
        body: Type.Object(
          {
            passkey_token: PasskeyToken,
            credential: RegistrationCredential,
            name: Type.Optional(
              Type.String({
                maxLength: PASSKEY_NAME_MAX_LENGTH,
                description: 'A label (no control or invisible characters); default from the browser',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: PasskeyView, ...errorResponses, 409: problemRef },
      },
    },
    async (request, reply) => {
      const { user, sessionId } = authOf(request);
      const passkey = await passkeys.register(
        { userId: user.id, sessionId },
        request.body.passkey_token,
        request.body.credential,
        passkeyName(request.body.name, request.headers['user-agent']),
        selfAudit(request),
      );
      return reply.code(201).send(toView(passkey));
    },
  );

  app.delete(
    '/users/me/passkeys/:id',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Remove a passkey',
        description:
          'Needs a recent sign-in (STEP_UP_MAX_AGE). 404 `PASSKEY_NOT_FOUND` when it is not yours. Ends every ' +
          "other session of the account (whoever signed in with a copy of the passkey is out) and its devices' " +
          'trust (device cookies); this session stays, and a browser that held a device cookie gets a new one.' +
          FACTOR_CHANGE_NOTE,
        // The credential id's own form: a free string let a NUL byte through, which PostgreSQL
        // refuses (22021, a 500) where SQLite answered 404.
        params: Type.Object({ id: B64(1024) }),
        response: { 204: NoBody(), ...errorResponses, 404: problemRef },
      },
    },
    async (request, reply) => {
      const { user, sessionId } = authOf(request);
      // A step-up a stolen session can earn (by adding a passkey of its own) must not become
      // device trust: only a device cookie held before is renewed.
      await keepingDeviceCookie(
        request,
        reply,
        {
          cookies: app.cookiePolicy,
          ttlSeconds: gatehouse.config.deviceTokenTtl,
          userId: user.id,
          selfService: gatehouse.selfService,
        },
        () => passkeys.remove({ userId: user.id, sessionId }, request.params.id, selfAudit(request)),
      );
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/reauthenticate/passkey/options',
    {
      preValidation: app.auth.require({ firstParty: true }),
      schema: {
        tags: ['accounts'],
        summary: 'Start re-authenticating this session with a passkey',
        description:
          'Options for `navigator.credentials.get()` listing your passkeys, and a `passkey_token` bound to this ' +
          'session, for `POST /auth/reauthenticate/passkey`.',
        response: {
          200: OptionsAnswer('PublicKeyCredentialRequestOptionsJSON (WebAuthn §5.5)'),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { user, sessionId } = authOf(request);
      const started = await passkeys.authenticationOptions('reauthenticate', { userId: user.id, sessionId });
      return reply
        .header('cache-control', 'no-store')
        .send({ options: started.options, passkey_token: started.token });
    },
  );

  app.post(
    '/auth/reauthenticate/passkey',
    {
      preValidation: app.auth.require({ firstParty: true }),
      schema: {
        tags: ['accounts'],
        summary: 'Re-authenticate this session with a passkey (step-up)',
        description:
          'As `POST /auth/reauthenticate`, proving every factor with one of your passkeys (user verification ' +
          'required): `amr` becomes `pop user mfa` (RFC 8176). 400 `PASSKEY_INVALID` when the assertion does not ' +
          'verify, is for another session, or its token expired or was used.',
        body: Type.Object(
          { passkey_token: PasskeyToken, credential: AuthenticationCredential },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            auth_time: Type.Integer({ description: 'Epoch seconds of this authentication' }),
            amr: Type.Array(Type.String(), { description: 'RFC 8176 methods proven: pop, user, mfa' }),
          }),
          ...errorResponses,
          404: problemRef,
        },
      },
    },
    async (request) => {
      const { user, sessionId } = authOf(request);
      const result = await gatehouse.reauthentication.reauthenticateWithPasskey(
        user.id,
        sessionId,
        { token: request.body.passkey_token, response: request.body.credential },
        callerOf(request),
      );
      return { auth_time: Math.floor(result.authTime / 1000), amr: result.amr };
    },
  );
}

/** A completed browser sign-in, as `auth-routes.ts` turns it into cookies. */
export type StartBrowserSession = (
  request: FastifyRequest,
  reply: FastifyReply,
  login: { cookieToken: string; deviceToken: string; session: { id: string } },
) => FastifyReply;

/**
 * `/auth/passkey…`: passwordless browser sign-in with a discoverable passkey. Registered by
 * `auth-routes.ts`, which owns the session cookies.
 */
export function registerPasskeySignInRoutes(
  parent: FastifyInstance,
  deps: {
    gatehouse: GatehouseCore;
    csrf: CsrfGuard;
    cookies: Pick<CookiePolicy, 'deviceName'>;
    startBrowserSession: StartBrowserSession;
  },
): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { gatehouse, csrf, cookies, startBrowserSession } = deps;
  const { config } = gatehouse;

  /**
   * Failed assertions per client address (LOGIN_MAX_FAILURES_PER_IP per LOGIN_FAILURE_WINDOW), and
   * per IPv6 /48 NETWORK_LIMIT_FACTOR times that (red-team 2026-12e J3: counted per /64 alone, one
   * /48 got 65 536 allowances): each costs a signature check and a tally update. Charged before
   * the check (atomic) and given back on success, so only failures count and concurrent tries
   * cannot slip past the cap.
   */
  const limitAddress = (request: FastifyRequest) =>
    enforceAddressRateLimit(
      gatehouse.counters,
      {
        prefix: 'passkey',
        max: config.loginMaxFailuresPerIp,
        windowMs: config.loginFailureWindow * 1000,
        message: 'Too many failed passkey sign-ins from this address; try again later.',
      },
      request.ip,
      gatehouse.clock,
    );

  app.post(
    '/auth/passkey/options',
    {
      schema: {
        tags: ['browser session'],
        summary: 'Start a passkey sign-in',
        description:
          'Options for `navigator.credentials.get()` with no credential list (the browser offers the passkeys it ' +
          'holds for this site: discoverable credentials) and user verification required, plus a `passkey_token` ' +
          'for `POST /auth/passkey/login`. Stores nothing: the token is sealed, single use and expires after ' +
          'MFA_TOKEN_TTL.',
        response: { 200: OptionsAnswer('PublicKeyCredentialRequestOptionsJSON (WebAuthn §5.5)') },
      },
    },
    async (_request, reply) => {
      const started = await gatehouse.passkeys.authenticationOptions('login');
      return reply
        .header('cache-control', 'no-store')
        .send({ options: started.options, passkey_token: started.token });
    },
  );

  app.post(
    '/auth/passkey/login',
    {
      schema: {
        tags: ['browser session'],
        summary: 'Sign in a browser with a passkey (no password)',
        description:
          'The assertion to the options of `POST /auth/passkey/options`, with its `passkey_token`. Needs ' +
          '`X-CSRF-Token` (login CSRF). On success, as `/auth/login`: 204 with the session, CSRF and device ' +
          'cookies; the session’s `amr` is `pop user mfa` (RFC 8176: every factor, so no second-factor prompt, and ' +
          'it satisfies REQUIRE_MFA_FOR_ROLES). 400 `PASSKEY_INVALID` for an unknown passkey, a bad signature, a ' +
          'counter that did not grow, or an expired or used token; 403 `ACCOUNT_DISABLED`/`EMAIL_NOT_VERIFIED`; ' +
          'verifications are limited per client address (429 `TOO_MANY_REQUESTS`), and failures per passkey and ' +
          'server-wide as password logins are (429 `TOO_MANY_LOGIN_ATTEMPTS`; a browser holding the device cookie ' +
          'of the passkey’s account signs in past the server-wide limit).',
        body: Type.Object(
          { passkey_token: PasskeyToken, credential: AuthenticationCredential },
          { additionalProperties: false },
        ),
        response: { 204: NoBody(), 400: problemRef, 403: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      const binding = await currentCsrfBinding(request);
      csrf.verify(request, binding);
      await limitAddress(request);
      const login = await gatehouse.selfService.signInWithPasskey(
        {
          token: request.body.passkey_token,
          response: request.body.credential,
          previousSessionId: binding === ANONYMOUS ? undefined : binding,
          deviceToken: request.cookies[cookies.deviceName],
        },
        callerOf(request),
      );
      if (!login.ok) {
        if (login.reason === 'throttled') {
          // Refused before any verification: like a refused password login, it spends nothing of
          // the address's allowance, so refusals cannot run down a neighbour's owner (same NAT).
          await refundAddressRateLimit(gatehouse.counters, 'passkey', request.ip);
          throw new GatehouseError(
            'TOO_MANY_LOGIN_ATTEMPTS',
            'Too many failed passkey sign-ins; try again later.',
            { retryAfterSeconds: login.retryAfterSeconds },
          );
        }
        if (login.reason === 'disabled')
          throw new GatehouseError('ACCOUNT_DISABLED', 'The account is disabled.');
        if (login.reason === 'unverified') {
          throw new GatehouseError(
            'EMAIL_NOT_VERIFIED',
            'Confirm your email address first: follow the link mailed to it.',
          );
        }
        throw new GatehouseError(
          'PASSKEY_INVALID',
          'The passkey could not be verified, or the sign-in expired: start again.',
        );
      }
      // Only failures count: a sign-in that verified gives its hit back.
      await refundAddressRateLimit(gatehouse.counters, 'passkey', request.ip);
      return startBrowserSession(request, reply, login);
    },
  );
}
