import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { clientInfo } from '../client-info.js';
import { errorResponses, IdParam, problemRef } from '../schemas.js';
import { authOf } from './me-routes.js';

const IdParams = Type.Object({ id: IdParam('User id') });

const AdminMfaView = Type.Object({
  mfa_enabled: Type.Boolean({
    description: 'True when the account has a confirmed authenticator or a passkey',
  }),
  totp: Type.Union([Type.Literal('off'), Type.Literal('pending'), Type.Literal('on')]),
  recovery_codes_left: Type.Integer(),
  passkeys: Type.Integer({ description: 'Registered passkeys' }),
});

/** `GET/DELETE /users/{id}/mfa`: admins see and reset other accounts' second factors. */
export function registerAdminMfaRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { mfaAdministration } = gatehouse;

  app.get(
    '/users/:id/mfa',
    {
      preValidation: app.auth.require({ role: 'admin', scopes: ['users:read'], firstParty: true }),
      schema: {
        tags: ['admin'],
        summary: "An account's second factors",
        params: IdParams,
        response: { 200: AdminMfaView, 404: problemRef, ...errorResponses },
      },
    },
    async (request) => {
      const status = await mfaAdministration.status(authOf(request).user, request.params.id);
      return {
        mfa_enabled: status.totp === 'on' || status.passkeys > 0,
        totp: status.totp,
        recovery_codes_left: status.recoveryCodesLeft,
        passkeys: status.passkeys,
      };
    },
  );

  app.delete(
    '/users/:id/mfa',
    {
      preValidation: app.auth.require({ role: 'admin', scopes: ['users:write'], firstParty: true }),
      schema: {
        tags: ['admin'],
        summary: "Reset an account's second factors",
        description:
          'For someone who lost their authenticator or passkeys: removes the authenticator, the recovery codes and ' +
          'every passkey, audits `mfa_reset`, ends every session of the account and mails its owner. Admins reset ' +
          'plain users; only a super_admin resets an admin or super_admin (403 `FORBIDDEN`), and nobody their own ' +
          'account here (403: `DELETE /users/me/mfa/totp` asks for a current code). `removed` is false when ' +
          'there was nothing to remove (the sessions end all the same). The admin must have signed in within ' +
          '`STEP_UP_MAX_AGE` on this session, with its second factor when its own account holds one (401 ' +
          '`STEP_UP_REQUIRED`; `POST /auth/reauthenticate`, then retry).',
        params: IdParams,
        response: {
          200: Type.Object({ removed: Type.Boolean() }),
          404: problemRef,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const auth = authOf(request);
      const removed = await mfaAdministration.reset(
        auth.user,
        request.params.id,
        clientInfo(request),
        auth.sessionId,
      );
      return { removed };
    },
  );
}
