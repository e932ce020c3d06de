import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AuditEntry } from '../../audit/audit-log.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { callerOf } from '../caller.js';
import { keepingDeviceCookie } from '../device-cookie.js';
import { errorResponses, FACTOR_CHANGE_NOTE, NoBody, problemRef } from '../schemas.js';
import { authOf } from './me-routes.js';

const MfaStatusView = Type.Object({
  totp: Type.Union([Type.Literal('off'), Type.Literal('pending'), Type.Literal('on')], {
    description: '`on`: logins ask for a code; `pending`: enrolment started, not confirmed yet',
  }),
  recovery_codes_left: Type.Integer({ description: 'Unused recovery codes' }),
  passkeys: Type.Integer({ description: 'Registered passkeys (`GET /users/me/passkeys`)' }),
});

const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String(), {
    description: 'Ten single-use codes, shown only now: each signs in once in place of an authenticator code',
  }),
});

const CodeBody = Type.Object(
  {
    code: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'The current code of your authenticator app, or an unused recovery code',
    }),
  },
  { additionalProperties: false },
);

/** The audit facts of a change the signed-in user makes to their own account. */
export function selfAudit(request: FastifyRequest): Omit<AuditEntry, 'event'> {
  const { user } = authOf(request);
  const { client } = callerOf(request);
  return { actorId: user.id, targetId: user.id, ip: client.ip, userAgent: client.userAgent };
}

/** `/users/me/mfa…`: TOTP enrolment and recovery codes; the rules are `gatehouse.mfa`'s. */
export function registerMfaRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { mfa } = gatehouse;
  // Second factors decide who can sign in: never an OAuth app's to set up or remove, even with
  // `me` (red-team 2026-12c H2: an app enrolled TOTP and held the recovery codes).
  const guard = app.auth.require({ scopes: ['me'], firstParty: true });

  app.get(
    '/users/me/mfa',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Your second factors',
        response: { 200: MfaStatusView, ...errorResponses },
      },
    },
    async (request) => {
      const status = await mfa.status(authOf(request).user.id);
      return { totp: status.totp, recovery_codes_left: status.recoveryCodesLeft, passkeys: status.passkeys };
    },
  );

  app.post(
    '/users/me/mfa/totp',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Start setting up an authenticator app (TOTP)',
        description:
          'Answers a new RFC 6238 secret (base32) and its `otpauth://` URI (scan it as a QR code, or type the ' +
          'secret). Nothing changes at login until `POST /users/me/mfa/totp/confirm` with a first code; asking again ' +
          "before that replaces the secret. 403 `EMAIL_NOT_VERIFIED` until the account's address is verified (a " +
          'second factor is set up only on a proven address), 409 `MFA_ALREADY_ENABLED` when an authenticator is ' +
          'already on.' +
          FACTOR_CHANGE_NOTE,
        response: {
          201: Type.Object({
            secret: Type.String({ description: 'Base32 shared secret (160 bits)' }),
            otpauth_uri: Type.String({ description: 'otpauth://totp/… (Key Uri Format), for the QR code' }),
          }),
          ...errorResponses,
          409: problemRef,
        },
      },
    },
    async (request, reply) => {
      const { user, sessionId } = authOf(request);
      const enrolment = await mfa.startTotpEnrolment(user, sessionId);
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ secret: enrolment.secret, otpauth_uri: enrolment.uri });
    },
  );

  app.post(
    '/users/me/mfa/totp/confirm',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Turn the authenticator on with its first code',
        description:
          'Proves the app holds the secret; from now on logins ask for a code. Answers ten recovery codes, shown ' +
          "only now. 400 `INVALID_OTP` for a wrong code, 403 `EMAIL_NOT_VERIFIED` while the account's address is " +
          'not verified (a pending enrolment is confirmed only on a proven address), 409 `MFA_ENROLMENT_NOT_STARTED` ' +
          'without a pending enrolment.' +
          FACTOR_CHANGE_NOTE,
        body: Type.Object(
          { code: Type.String({ minLength: 1, maxLength: 16, description: 'Six-digit code from the app' }) },
          { additionalProperties: false },
        ),
        response: { 200: RecoveryCodes, ...errorResponses, 409: problemRef },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      const codes = await mfa.confirmTotp(
        auth.user.id,
        auth.sessionId,
        request.body.code,
        selfAudit(request),
      );
      return reply.header('cache-control', 'no-store').send({ recovery_codes: codes });
    },
  );

  app.delete(
    '/users/me/mfa/totp',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Turn the authenticator off',
        description:
          'Needs a current authenticator or recovery code in `code`: a stolen password or token alone cannot ' +
          'remove the second factor. Wrong codes are limited per session (429 with Retry-After), and count toward ' +
          "the account's MFA_MAX_CONSECUTIVE_FAILURES, at which authenticator-app codes are refused unchecked (403 " +
          '`SECOND_FACTOR_LOCKED`; a recovery code is still checked). Removes the recovery codes too, and ends every ' +
          "other session of the account and its devices' trust (device cookies); this session stays, and a browser " +
          'that held a device cookie gets a new one.',
        body: CodeBody,
        response: { 204: NoBody(), ...errorResponses, 409: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      await keepingDeviceCookie(
        request,
        reply,
        {
          cookies: app.cookiePolicy,
          ttlSeconds: gatehouse.config.deviceTokenTtl,
          userId: auth.user.id,
          selfService: gatehouse.selfService,
        },
        () => mfa.disable(auth.user.id, auth.sessionId, request.body.code, selfAudit(request)),
      );
      return reply.code(204).send();
    },
  );

  app.post(
    '/users/me/mfa/recovery-codes',
    {
      preValidation: guard,
      schema: {
        tags: ['second factors'],
        summary: 'Replace your recovery codes',
        description:
          'Needs a current authenticator or recovery code in `code`, limited as for turning the authenticator off ' +
          '(429; 403 `SECOND_FACTOR_LOCKED` at MFA_MAX_CONSECUTIVE_FAILURES). The old codes stop working; the ten ' +
          'new ones are shown only now.',
        body: CodeBody,
        response: { 200: RecoveryCodes, ...errorResponses, 409: problemRef, 429: problemRef },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      const codes = await mfa.regenerateRecoveryCodes(
        auth.user.id,
        auth.sessionId,
        request.body.code,
        selfAudit(request),
      );
      return reply.header('cache-control', 'no-store').send({ recovery_codes: codes });
    },
  );
}
