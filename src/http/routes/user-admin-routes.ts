import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { toPublicUser } from '../../accounts/public-user.js';
import { ROLES } from '../../accounts/roles.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { clientInfo } from '../client-info.js';
import {
  errorResponses,
  IdParam,
  NoBody,
  PageQuery,
  pageOf,
  problemRef,
  publicUserRef,
  QueryText,
} from '../schemas.js';
import { authOf } from './me-routes.js';

const RoleSchema = Type.Enum([...ROLES]);
// A type array rather than a union: a too-long name then gives one field error, not three (anyOf).
const FullNameSchema = Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: 400 });
const IdParams = Type.Object({ id: IdParam('User id') });

const RULES =
  'Admins manage plain users; only a super_admin grants or removes `admin` / `super_admin` or changes an admin ' +
  'or super_admin account (403 `FORBIDDEN`). The last active super_admin cannot be demoted, disabled or deleted ' +
  '(409 `LAST_SUPER_ADMIN`).';

/** Admin user management: `GET /users`, `GET/PATCH/DELETE /users/{id}` (rules in the user admin service). */
export function registerUserAdminRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const admin = gatehouse.userAdmin;
  // Administration is first-party only, like the account's security routes: an app an admin
  // registered with admin scopes, allowed by a super_admin, acted with the super_admin's role
  // (red-team 2026-12d I11: it promoted its admin). The scopes still narrow first-party tokens.
  const canRead = app.auth.require({ role: 'admin', scopes: ['users:read'], firstParty: true });
  const canWrite = app.auth.require({ role: 'admin', scopes: ['users:write'], firstParty: true });

  app.get(
    '/users',
    {
      preValidation: canRead,
      schema: {
        tags: ['admin'],
        summary: 'List accounts',
        description: 'Oldest first. Filters combine: `email_prefix` (case-insensitive), `role`, `is_active`.',
        querystring: Type.Object(
          {
            ...PageQuery,
            email_prefix: Type.Optional(QueryText({ maxLength: 320 })),
            role: Type.Optional(RoleSchema),
            is_active: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: {
          200: pageOf(publicUserRef),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { query } = request;
      const page = await admin.listUsers(authOf(request).user, {
        limit: query.limit,
        offset: query.offset,
        emailPrefix: query.email_prefix,
        role: query.role,
        isActive: query.is_active,
      });
      return {
        items: page.items.map(toPublicUser),
        total: page.total,
        limit: query.limit,
        offset: query.offset,
      };
    },
  );

  app.get(
    '/users/:id',
    {
      preValidation: canRead,
      schema: {
        tags: ['admin'],
        summary: 'One account',
        params: IdParams,
        response: { 200: publicUserRef, 404: problemRef, ...errorResponses },
      },
    },
    async (request) => {
      return toPublicUser(await admin.getUser(authOf(request).user, request.params.id));
    },
  );

  app.patch(
    '/users/:id',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Change an account’s name, role or active flag',
        description: `${RULES} A role change or a disable ends every session of the account at once.`,
        params: IdParams,
        body: Type.Object(
          {
            full_name: Type.Optional(FullNameSchema),
            role: Type.Optional(RoleSchema),
            is_active: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: publicUserRef, 404: problemRef, 409: problemRef, ...errorResponses },
      },
    },
    async (request) => {
      const { params, body } = request;
      const updated = await admin.updateUser(
        authOf(request).user,
        params.id,
        { fullName: body.full_name, role: body.role, isActive: body.is_active },
        clientInfo(request),
      );
      return toPublicUser(updated);
    },
  );

  app.delete(
    '/users/:id',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Delete an account',
        description:
          `${RULES} The same deletion as \`DELETE /users/me\` (red-team 2026-12f K1): every session of the ` +
          'account ends, the apps’ account-deletion hooks run (Dicery closes the rooms it hosts and ' +
          'empties them first, in short transactions of their own; a hook that fails aborts the deletion), the IP addresses and user agents of its audit ' +
          'entries and failed-login tallies are erased, and the owner is mailed. The `user_deleted` audit ' +
          'entry keeps the account’s id and role and the administrator’s id, IP and user agent, not the address. ' +
          'Not for the caller’s own account (403 `FORBIDDEN`): that is `DELETE /users/me`, which asks for the password.',
        params: IdParams,
        response: { 204: NoBody(), 404: problemRef, 409: problemRef, ...errorResponses },
      },
    },
    async (request, reply) => {
      await admin.deleteUser(authOf(request).user, request.params.id, clientInfo(request));
      return reply.code(204).send();
    },
  );
}
