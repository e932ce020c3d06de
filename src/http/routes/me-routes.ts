import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { toPublicUser } from '../../accounts/public-user.js';
import { GatehouseError } from '../../errors.js';
import type { Gatehouse } from '../../gatehouse.js';
import type { AuthContext } from '../auth.js';
import { clientInfo } from '../client-info.js';
import { recordAudit } from '../record-audit.js';
import { errorResponses, IdParam, problemRef, publicUserRef } from '../schemas.js';

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

/** The guard sets `request.auth`; a route behind one can rely on it. */
export function authOf(request: { auth: AuthContext | null }): AuthContext {
  if (request.auth === null) throw new GatehouseError('UNAUTHENTICATED', 'Sign in first.');
  return request.auth;
}

/** `/users/me` and the caller's sessions. */
export function registerMeRoutes(app: FastifyInstance, gatehouse: Gatehouse): void {
  const { accounts, sessions, audit, sessionStore } = gatehouse;
  const guard = app.auth.require({ scopes: ['me'] });

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
    async (request) => toPublicUser(authOf(request).user),
  );

  app.patch(
    '/users/me',
    {
      preValidation: guard,
      schema: {
        tags: ['accounts'],
        summary: 'Change your name or password',
        description:
          'A password change needs `current_password` and ends every other session of your account. Wrong ' +
          '`current_password` guesses are limited per session (LOGIN_MAX_FAILURES_PER_DEVICE): then 429 with Retry-After.',
        body: Type.Object(
          {
            full_name: Type.Optional(Type.Union([Type.String({ maxLength: 400 }), Type.Null()])),
            password: Type.Optional(Type.String({ maxLength: 4096 })),
            current_password: Type.Optional(Type.String({ maxLength: 4096 })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: publicUserRef, ...errorResponses, 429: problemRef },
      },
    },
    async (request) => {
      const auth = authOf(request);
      const body = request.body as {
        full_name?: string | null;
        password?: string;
        current_password?: string;
      };
      const updated = await accounts.updateProfile(
        auth.user,
        { fullName: body.full_name, password: body.password, currentPassword: body.current_password },
        auth.sessionId,
      );
      if (body.password !== undefined) {
        await recordAudit(request, audit, {
          event: 'password_changed',
          actorId: auth.user.id,
          targetId: auth.user.id,
          ...clientInfo(request),
        });
      }
      return toPublicUser(updated);
    },
  );

  app.get(
    '/users/me/sessions',
    {
      preValidation: guard,
      schema: {
        tags: ['accounts'],
        summary: 'Your live sessions',
        response: { 200: Type.Array(SessionView), ...errorResponses },
      },
    },
    async (request) => {
      const auth = authOf(request);
      const iso = (ms: number) => new Date(ms).toISOString();
      return (await sessions.listSessions(auth.user.id)).map((session) => ({
        id: session.id,
        transport: session.transport,
        current: session.id === auth.sessionId,
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
      preValidation: guard,
      schema: {
        tags: ['accounts'],
        summary: 'End one of your sessions',
        params: Type.Object({ id: IdParam('Session id') }),
        response: { 204: Type.Null(), 404: problemRef, ...errorResponses },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      const { id } = request.params as { id: string };
      const session = await sessionStore.findSession(id);
      // Someone else's session answers exactly like a missing one.
      if (session === undefined || session.userId !== auth.user.id || session.revokedAt !== null) {
        throw new GatehouseError('SESSION_NOT_FOUND', 'No such session.');
      }
      await sessions.revokeSessions([id]);
      await recordAudit(request, audit, {
        event: 'session_revoked',
        actorId: auth.user.id,
        targetId: auth.user.id,
        ...clientInfo(request),
        details: { session: id },
      });
      return reply.code(204).send();
    },
  );
}
