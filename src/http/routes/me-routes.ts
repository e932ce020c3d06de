import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { type AccountUser, toPublicUser } from '../../accounts/public-user.js';
import { GatehouseError } from '../../errors.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { type AuthContext, type UserAuthContext, userAuthOf } from '../auth.js';
import { callerOf } from '../caller.js';
import { renewDeviceCookie } from '../device-cookie.js';
import { errorResponses, IdParam, NoBody, problemRef, publicUserRef } from '../schemas.js';

const SessionView = Type.Object({
  id: Type.String(),
  transport: Type.Union([Type.Literal('bearer'), Type.Literal('cookie')]),
  current: Type.Boolean({ description: 'True for the session making this request' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
});

/**
 * `GET /users/me`'s body, serialized once per cached user object rather than on every request
 * (issue 10: fast-json-stringify's escaping was ≈ 2 % of the route's instructions). Bounded and
 * never stale by construction: keyed weakly by the user cache's object, which is replaced, not
 * mutated, when the account changes (the same rule `toPublicUser`'s memo relies on).
 */
const serializedUsers = new WeakMap<AccountUser, string>();
/** What Fastify itself sends with a serialized JSON body. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The guard sets `request.auth`; a route behind one (for Gatehouse users only) can rely on it. */
export const authOf: (request: { auth: AuthContext | null }) => UserAuthContext = userAuthOf;

/** `/users/me` and the caller's sessions; the rules are `gatehouse.selfService`'s. */
export function registerMeRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { selfService } = gatehouse;
  const guard = app.auth.require({ scopes: ['me'] });
  // Sessions are how the account is held: an app's token may not list or end them (red-team
  // 2026-12c H2), see `firstParty`.
  const ownSignIn = app.auth.require({ scopes: ['me'], firstParty: true });

  app.get(
    '/users/me',
    {
      preValidation: guard,
      schema: {
        tags: ['accounts'],
        summary: 'Your account',
        response: { 200: publicUserRef, ...errorResponses },
      },
    },
    // Synchronous: nothing to wait for once the guard has run, so no promise per request.
    (request, reply) => {
      const { user } = authOf(request);
      let body = serializedUsers.get(user);
      if (body === undefined) {
        // The route's own response serializer, so the bytes are exactly what it would send.
        const serialized = reply.serialize(toPublicUser(user));
        // Ours return strings; anything else is sent the usual way, unremembered.
        if (typeof serialized !== 'string') return toPublicUser(user);
        body = serialized;
        serializedUsers.set(user, body);
      }
      // A string with a JSON content type is sent as it is (Fastify serializes only objects).
      return reply.type(JSON_CONTENT_TYPE).send(body);
    },
  );

  app.patch(
    '/users/me',
    {
      preValidation: guard,
      schema: {
        tags: ['accounts'],
        summary: 'Change your name, password or email',
        description:
          'A password change needs `current_password`, ends every other session of your account and the password ' +
          'reset links mailed before it. Wrong `current_password` guesses are limited per session ' +
          '(LOGIN_MAX_FAILURES_PER_DEVICE: then 429 `TOO_MANY_LOGIN_ATTEMPTS`), and so are checks of it, right ones ' +
          'included (10 per LOGIN_FAILURE_WINDOW: then 429 `TOO_MANY_REQUESTS`), each with Retry-After. ' +
          'An `email` change (with `current_password`, on its own) answers 202: a confirmation link goes to the new ' +
          'address (`POST /auth/email-change/confirm`), a notice to the current one, and the address changes only ' +
          'once confirmed, and only while the session that asked is live: a password reset or change, "log out ' +
          'everywhere", ending that session or the account being disabled cancels it. A taken address is 409 `EMAIL_TAKEN` (with `REQUIRE_VERIFIED_EMAIL`, 202 like any other). ' +
          'Email change requests are limited to 5 an hour per account (counted before the password is checked) and ' +
          '20 per requesting network (an IPv4 address, an IPv6 /48; counted once the password was right): then 429 ' +
          '`TOO_MANY_REQUESTS` with Retry-After. ' +
          "Password and email changes are first-party only: an OAuth app's token (authorization code flow) may " +
          'change `full_name` alone, and gets 403 `FIRST_PARTY_ONLY` for the rest.',
        body: Type.Object(
          {
            full_name: Type.Optional(Type.Union([Type.String({ maxLength: 400 }), Type.Null()])),
            password: Type.Optional(Type.String({ maxLength: 4096 })),
            current_password: Type.Optional(Type.String({ maxLength: 4096 })),
            email: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: {
          200: publicUserRef,
          202: publicUserRef,
          ...errorResponses,
          409: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      const { body } = request;
      // The password and the address are the ways into the account: never an app's to change.
      if (body.email !== undefined || body.password !== undefined) await app.auth.requireFirstParty(auth);
      if (body.email !== undefined) {
        if (body.password !== undefined || body.full_name !== undefined) {
          throw new GatehouseError('VALIDATION_FAILED', 'change email on its own', {
            errors: [{ field: 'email', message: 'cannot be changed together with other fields' }],
          });
        }
        const user = await gatehouse.lifecycle.requestEmailChange(
          auth.user.id,
          body.email,
          { currentPassword: body.current_password },
          auth.sessionId,
          callerOf(request),
        );
        return reply.code(202).send(toPublicUser(user));
      }
      const updated = await selfService.changeProfile(
        auth.user.id,
        { fullName: body.full_name, password: body.password, currentPassword: body.current_password },
        auth.sessionId,
        callerOf(request),
      );
      // A new password ends every device token of the account, this browser's included.
      if (body.password !== undefined) {
        await renewDeviceCookie(request, reply, {
          cookies: app.cookiePolicy,
          ttlSeconds: gatehouse.config.deviceTokenTtl,
          transport: auth.transport,
          userId: auth.user.id,
          selfService,
        });
      }
      return toPublicUser(updated);
    },
  );

  app.get(
    '/users/me/sessions',
    {
      preValidation: ownSignIn,
      schema: {
        tags: ['accounts'],
        summary: 'Your live sessions',
        response: { 200: Type.Array(SessionView), ...errorResponses },
      },
    },
    async (request) => {
      const auth = authOf(request);
      const iso = (ms: number) => new Date(ms).toISOString();
      return (await selfService.listSessions(auth.user.id, auth.sessionId)).map((session) => ({
        id: session.id,
        transport: session.transport,
        current: session.current,
        created_at: iso(session.createdAt),
        last_used_at: iso(session.lastUsedAt),
        expires_at: iso(session.expiresAt),
        user_agent: session.userAgent,
        ip: session.ip,
      }));
    },
  );

  app.delete(
    '/users/me/sessions/:id',
    {
      preValidation: ownSignIn,
      schema: {
        tags: ['accounts'],
        summary: 'End one of your sessions',
        params: Type.Object({ id: IdParam('Session id') }),
        response: { 204: NoBody(), 404: problemRef, ...errorResponses },
      },
    },
    async (request, reply) => {
      await selfService.endSession(authOf(request).user.id, request.params.id, callerOf(request));
      return reply.code(204).send();
    },
  );
}
