import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { INVALID_OR_UNCONFIRMED_LOGIN } from '../../accounts/login-refusal.js';
import { toPublicUser } from '../../accounts/public-user.js';
import { GatehouseError } from '../../errors.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { SECOND_FACTOR_LOCKED_MESSAGE } from '../../mfa/mfa-service.js';
import { MAX_PASSWORD_LENGTH } from '../../passwords/password-policy.js';
import { callerOf } from '../caller.js';
import type { CookiePolicy } from '../cookies.js';
import { ANONYMOUS, type CsrfGuard } from '../csrf.js';
import { currentCsrfBinding } from '../csrf-binding.js';
import { keepingDeviceCookie } from '../device-cookie.js';
import { enforceAddressRateLimit } from '../rate-limit.js';
import { declareLocation, errorResponses, NoBody, problemRef, publicUserRef } from '../schemas.js';
import { authOf } from './me-routes.js';
import { registerPasskeySignInRoutes } from './passkey-routes.js';

const LoginBody = Type.Object(
  {
    username: Type.Optional(
      Type.String({ maxLength: 320, description: 'Email (form field name used by OAuth clients)' }),
    ),
    email: Type.Optional(Type.String({ maxLength: 320, description: 'Email (alternative to username)' })),
    password: Type.String({ maxLength: 4096 }),
  },
  { additionalProperties: false },
);

/** `GET /auth/password-policy`: what a browser may check before sending a new password. */
const PasswordPolicyBody = Type.Object({
  min_length: Type.Integer({
    description: 'Shortest password, in code points after NFKC (`PASSWORD_MIN_LENGTH`)',
  }),
  max_length: Type.Integer({ description: 'Longest password, in code points after NFKC; never truncated' }),
});

const MfaRequired = Type.Object({
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({
    description: 'Send it to `POST /auth/login/mfa` with `otp` within MFA_TOKEN_TTL (default 5 minutes)',
  }),
});

/**
 * Account routes: register, cookie login/logout, logout everywhere, CSRF tokens. They carry cookies
 * and CSRF tokens; the rules are `gatehouse.selfService`'s.
 */
export function registerAuthRoutes(
  parent: FastifyInstance,
  deps: { gatehouse: GatehouseCore; cookies: CookiePolicy; csrf: CsrfGuard },
): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { gatehouse, cookies, csrf } = deps;
  const { selfService, config } = gatehouse;

  const clearSessionCookies = (reply: FastifyReply) => {
    // Same attributes as when set, or browsers keep the original (RFC 6265bis §5.7).
    reply.clearCookie(cookies.sessionName, { ...cookies.httpOnly, maxAge: 0 });
    reply.clearCookie(cookies.csrfTokenName, { ...cookies.readable, sameSite: 'strict', maxAge: 0 });
  };

  app.post(
    '/auth/register',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Create an account',
        description:
          'Passwords (NIST SP 800-63B-4): `PASSWORD_MIN_LENGTH` (default 15) to 1024 characters after NFKC, never ' +
          'truncated, no composition rules; not one of the 100 000 most common passwords, nor your email, its ' +
          'name part or the service name, in any case or with digits or symbols added around it. Emails are ' +
          'unique ignoring case. Unknown fields (such as `role`) are rejected, never stored. A verification link ' +
          'is mailed to the address. With `REQUIRE_VERIFIED_EMAIL=true` the answer is 202 whether or not the ' +
          'address already has an account (its owner is mailed instead), so sign-up reveals no accounts.',
        body: Type.Object(
          {
            email: Type.String({ minLength: 3, maxLength: 320 }),
            password: Type.String({ maxLength: 4096 }),
            full_name: Type.Optional(Type.Union([Type.String({ maxLength: 400 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
        response: {
          201: declareLocation(publicUserRef, 'The new account: `/users/{id}` (admins read it there)'),
          202: Type.Object({ status: Type.Literal('accepted') }),
          400: problemRef,
          409: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      // Each sign-up costs an argon2id hash and answers whether an email is taken: bound both.
      // Per address and, for IPv6, per /48 (red-team 2026-12d I8: per /64 alone one network had
      // 65 536 allowances, enough to keep the hashing lane full and mail any address).
      await enforceAddressRateLimit(
        gatehouse.counters,
        {
          prefix: 'register',
          max: config.registrationsPerHour,
          windowMs: 3600_000,
          message: 'Too many sign-ups from this address; try again later.',
        },
        request.ip,
        gatehouse.clock,
      );
      const { body } = request;
      const outcome = await gatehouse.lifecycle.register(
        { email: body.email, password: body.password, fullName: body.full_name },
        callerOf(request),
      );
      // The new account's id and address: never kept by a cache (authenticated routes get the same
      // from the guard; this one has none). Red-team 2026-12h C3.
      reply.header('cache-control', 'no-store');
      if (outcome.status === 'accepted') return reply.code(202).send({ status: 'accepted' as const });
      // RFC 9110 §15.3.2: Location names the account created, `/users/{id}`, whose readers are
      // admins; not `/users/me`, which names whoever asks, and which the new account reaches only
      // once signed in. Never on the 202 above: it would tell a new address from a taken one.
      return reply.code(201).header('location', `/users/${outcome.user.id}`).send(toPublicUser(outcome.user));
    },
  );

  app.get(
    '/auth/password-policy',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Password rules for new passwords',
        description:
          'The lengths the server enforces on new passwords, in code points after NFKC, so a sign-up or ' +
          'password-change form can say them and check them before sending, instead of copying the ' +
          'setting. Public and the same for everyone (it reveals only `PASSWORD_MIN_LENGTH`); the ' +
          'blocklist is not exposed, so the server still has the last word.',
        response: { 200: PasswordPolicyBody },
      },
    },
    async (_request, reply) => {
      // Same for every caller, and changes only with a restart: let browsers keep it a little.
      return reply
        .header('cache-control', 'public, max-age=300')
        .send({ min_length: config.passwordMinLength, max_length: MAX_PASSWORD_LENGTH });
    },
  );

  app.get(
    '/auth/csrf',
    {
      schema: {
        tags: ['browser session'],
        summary: 'Get a CSRF token',
        description:
          'Returns a token to send as `X-CSRF-Token` on unsafe cookie-authenticated requests (and on `/auth/login`), ' +
          'and sets it as a readable cookie. It is bound to the current browser session, so fetch a new one after login.',
        response: { 200: Type.Object({ csrf_token: Type.String() }) },
      },
    },
    async (request, reply) => {
      const token = csrf.issue(request, reply, await currentCsrfBinding(request));
      return reply.header('cache-control', 'no-store').send({ csrf_token: token });
    },
  );

  app.post(
    '/auth/login',
    {
      schema: {
        tags: ['browser session'],
        summary: 'Sign in a browser (session cookie)',
        description:
          'Form or JSON with `username` (or `email`) and `password`. Needs `X-CSRF-Token` from `GET /auth/csrf` ' +
          '(login CSRF protection). On success: 204, a new HttpOnly session cookie, a new CSRF token cookie and a ' +
          'device cookie (`__Host-gatehouse_device`): failed logins from elsewhere never lock out a browser that holds ' +
          'one for the account. Refused logins answer 429 with Retry-After. When the account has a second factor, a ' +
          'right password answers 200 `{ "mfa_required": true, "mfa_token": … }` and sets no cookie: finish at ' +
          '`POST /auth/login/mfa`.',
        body: LoginBody,
        response: { 200: MfaRequired, 204: NoBody(), 400: problemRef, 403: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      const binding = await currentCsrfBinding(request);
      csrf.verify(request, binding);
      const { body } = request;
      const email = body.username ?? body.email;
      if (email === undefined) {
        throw new GatehouseError('VALIDATION_FAILED', 'username is required', {
          errors: [{ field: 'username', message: 'is required' }],
        });
      }
      const login = await selfService.signIn(
        {
          email,
          password: body.password,
          deviceToken: request.cookies[cookies.deviceName],
          previousSessionId: binding === ANONYMOUS ? undefined : binding,
        },
        callerOf(request),
      );
      if (!login.ok) {
        if (login.reason === 'throttled') {
          throw new GatehouseError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many failed logins; try again later.', {
            retryAfterSeconds: login.retryAfterSeconds,
          });
        }
        if (login.reason === 'busy') {
          throw new GatehouseError(
            'TOO_MANY_REQUESTS',
            'Too many logins to this account at once; try again shortly.',
            { retryAfterSeconds: login.retryAfterSeconds },
          );
        }
        if (login.reason === 'disabled')
          throw new GatehouseError('ACCOUNT_DISABLED', 'The account is disabled.');
        if (login.reason === 'mfa_required') {
          return reply
            .code(200)
            .header('cache-control', 'no-store')
            .send({ mfa_required: true as const, mfa_token: login.mfaToken });
        }
        // An unverified account (REQUIRE_VERIFIED_EMAIL) answers as a wrong password does (see
        // INVALID_OR_UNCONFIRMED_LOGIN: else a sign-up with someone's address told whether it had
        // an account).
        throw new GatehouseError(
          'INVALID_CREDENTIALS',
          config.requireVerifiedEmail ? INVALID_OR_UNCONFIRMED_LOGIN : 'Invalid email or password.',
        );
      }
      return startBrowserSession(request, reply, login);
    },
  );

  app.post(
    '/auth/login/mfa',
    {
      schema: {
        tags: ['browser session'],
        summary: 'Finish a browser sign-in with a second factor',
        description:
          'JSON or form with the `mfa_token` from `POST /auth/login` and `otp`: the current code of your ' +
          'authenticator app, or an unused recovery code (spent by this use). Needs `X-CSRF-Token`. On success, as ' +
          '`/auth/login`: 204 with the session, CSRF and device cookies. A wrong code answers 400 `INVALID_OTP`; ' +
          'after MFA_MAX_FAILURES_PER_TOKEN wrong codes the token is dead (400 `MFA_TOKEN_INVALID`: sign in again); ' +
          'wrong codes are also limited per account (browsers holding a device cookie count on their own): 429. ' +
          'After MFA_MAX_CONSECUTIVE_FAILURES wrong codes in a row on the account (from any client), a browser ' +
          'without its device cookie is refused before its authenticator-app code is checked: 403 ' +
          '`SECOND_FACTOR_LOCKED`, until a recovery code (still checked at the cap), a passkey, or a code from a ' +
          'device that signed in before, signs in (or an admin resets the factor; a password reset does not lift it).',
        body: Type.Object(
          {
            mfa_token: Type.String({ minLength: 1, maxLength: 2048 }),
            otp: Type.String({ minLength: 1, maxLength: 64, description: 'TOTP code or recovery code' }),
          },
          { additionalProperties: false },
        ),
        response: { 204: NoBody(), 400: problemRef, 403: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      const binding = await currentCsrfBinding(request);
      csrf.verify(request, binding);
      const login = await selfService.completeSignIn(
        {
          mfaToken: request.body.mfa_token,
          otp: request.body.otp,
          previousSessionId: binding === ANONYMOUS ? undefined : binding,
        },
        callerOf(request),
      );
      if (!login.ok) {
        if (login.reason === 'throttled') {
          throw new GatehouseError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many wrong codes; try again later.', {
            retryAfterSeconds: login.retryAfterSeconds,
          });
        }
        if (login.reason === 'locked') {
          throw new GatehouseError('SECOND_FACTOR_LOCKED', SECOND_FACTOR_LOCKED_MESSAGE);
        }
        if (login.reason === 'invalid_token') {
          throw new GatehouseError(
            'MFA_TOKEN_INVALID',
            'The sign-in has expired or used up its tries; sign in again.',
            {
              errors: [{ field: 'mfa_token', message: 'is invalid, expired, used or out of tries' }],
            },
          );
        }
        throw new GatehouseError('INVALID_OTP', 'The code is wrong, expired or already used.', {
          errors: [
            {
              field: 'otp',
              message: 'must be the current code of your authenticator app or a recovery code',
            },
          ],
        });
      }
      return startBrowserSession(request, reply, login);
    },
  );

  registerPasskeySignInRoutes(app, { gatehouse, csrf, cookies, startBrowserSession });

  /** Sets the cookies of a completed sign-in and answers 204. */
  function startBrowserSession(
    request: FastifyRequest,
    reply: FastifyReply,
    login: { cookieToken: string; deviceToken: string; session: { id: string } },
  ): FastifyReply {
    reply.setCookie(cookies.sessionName, login.cookieToken, {
      ...cookies.httpOnly,
      maxAge: config.sessionAbsoluteTtl,
    });
    // OWASP device cookie: this browser has now signed in to this account, so later failures from
    // elsewhere cannot lock it out.
    reply.setCookie(cookies.deviceName, login.deviceToken, cookies.device(config.deviceTokenTtl));
    csrf.issue(request, reply, login.session.id);
    return reply.code(204).send();
  }

  app.post(
    '/auth/reauthenticate',
    {
      // First-party: an OAuth app's token (authorization code flow) must not step its session up,
      // whatever its scopes (red-team 2026-12c H2), nor sign the person out everywhere below.
      preValidation: app.auth.require({ scopes: ['me'], firstParty: true }),
      schema: {
        tags: ['accounts'],
        summary: 'Re-authenticate this session (step-up)',
        description:
          'Sensitive changes (a password change on an account with a second factor, setting up an authenticator; ' +
          'other modules add theirs) need an authentication within STEP_UP_MAX_AGE and otherwise answer 401 with ' +
          '`WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=…` (RFC 9470). Send ' +
          '`current_password`, plus `otp` (a TOTP or recovery code) when the account has a second factor: every ' +
          "factor, as at login. Moves the session's `auth_time` to now (tokens already issued keep working; new " +
          'access tokens carry the new `auth_time`). Wrong guesses are limited per session (429), and so are checks of ' +
          'the password, right ones included (10 per LOGIN_FAILURE_WINDOW, 429 `TOO_MANY_REQUESTS`); wrong codes also ' +
          "count toward the account's MFA_MAX_CONSECUTIVE_FAILURES, at which authenticator-app codes are refused " +
          'unchecked (403 `SECOND_FACTOR_LOCKED`: re-authenticate with a recovery code, which is still checked, or a ' +
          'passkey, or sign in with a code on a trusted device).',
        body: Type.Object(
          {
            current_password: Type.String({ maxLength: 4096 }),
            otp: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            auth_time: Type.Integer({ description: 'Epoch seconds of this authentication' }),
            amr: Type.Array(Type.String(), { description: 'RFC 8176 methods proven: pwd, otp, mfa' }),
          }),
          ...errorResponses,
          404: problemRef,
          429: problemRef,
        },
      },
    },
    async (request) => {
      const auth = authOf(request);
      const result = await gatehouse.reauthentication.reauthenticate(
        auth.user.id,
        auth.sessionId,
        { currentPassword: request.body.current_password, otp: request.body.otp },
        callerOf(request),
      );
      return { auth_time: Math.floor(result.authTime / 1000), amr: result.amr };
    },
  );

  app.post(
    '/auth/logout',
    {
      preValidation: app.auth.require(),
      schema: {
        tags: ['browser session'],
        summary: 'End this session',
        description:
          'Revokes the current session (its access, refresh and cookie tokens) and clears the cookie.',
        response: { 204: NoBody(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      await selfService.signOut(auth.user.id, auth.sessionId, callerOf(request));
      clearSessionCookies(reply);
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/logout-all',
    {
      preValidation: app.auth.require({ scopes: ['me'], firstParty: true }),
      schema: {
        tags: ['accounts'],
        summary: 'End every session of your account',
        response: { 204: NoBody(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      await keepingDeviceCookie(
        request,
        reply,
        { cookies, ttlSeconds: config.deviceTokenTtl, userId: auth.user.id, selfService },
        async () => {
          await selfService.signOutEverywhere(auth.user.id, callerOf(request));
          clearSessionCookies(reply);
        },
      );
      return reply.code(204).send();
    },
  );
}
