import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AuditRecord } from '../../audit/audit-log.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { errorResponses, IdParam, PageQuery, pageOf } from '../schemas.js';

const NullableString = (description?: string) =>
  Type.Union([Type.String(), Type.Null()], description === undefined ? {} : { description });

const AuditEventView = Type.Object({
  id: Type.Integer(),
  event: Type.String({ description: 'e.g. login_succeeded, login_failed, role_changed, user_deleted' }),
  actor_id: NullableString('Who did it'),
  target_id: NullableString('Whose account it concerned'),
  ip: NullableString(),
  user_agent: NullableString(),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
});

function toAuditView(record: AuditRecord) {
  return {
    id: record.id,
    event: record.event,
    actor_id: record.actorId,
    target_id: record.targetId,
    ip: record.ip,
    user_agent: record.userAgent,
    details: record.details,
    created_at: new Date(record.createdAt).toISOString(),
  };
}

// RFC 3339 §5.6 allows a leap second (`23:59:60`), so the schema's date-time format accepts one,
// but Date.parse answers NaN for it, and NaN reached PostgreSQL as a bigint (500). POSIX time has
// no leap seconds: the instant is the one after `:59`, i.e. the start of the next second.
const LEAP_SECOND = /:60(?=(?:\.\d+)?(?:z|[+-]\d\d:\d\d)$)/i;

function parseDateTime(value: string): number {
  const parsed = Date.parse(value);
  if (!Number.isNaN(parsed) || !LEAP_SECOND.test(value)) return parsed;
  return Math.floor(Date.parse(value.replace(LEAP_SECOND, ':59')) / 1000) * 1000 + 1000;
}

/**
 * `GET /audit`: the security audit trail, for super admins holding `audit:read`; the account's role
 * is checked as it is now, not only the token's scope.
 */
export function registerAuditRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { audit } = gatehouse;

  app.get(
    '/audit',
    {
      preValidation: app.auth.require({ role: 'super_admin', scopes: ['audit:read'], firstParty: true }),
      schema: {
        tags: ['admin'],
        summary: 'Read the audit log',
        description:
          'Newest first. Logins (success and failure), logouts, refresh-token reuse, password changes, role ' +
          'changes, disables, enables and deletions, with actor, target, IP, user agent and time. Filters ' +
          'combine; `since` is inclusive and `until` exclusive. Entries never contain secrets. Super admins only ' +
          '(the role as it is now, and scope `audit:read`): 403 `FORBIDDEN` otherwise.',
        querystring: Type.Object(
          {
            ...PageQuery,
            event: Type.Optional(Type.String({ pattern: '^[a-z_]{1,64}$' })),
            actor_id: Type.Optional(IdParam('Who did it (a user id)')),
            target_id: Type.Optional(IdParam('Whose account it concerned (a user id)')),
            since: Type.Optional(Type.String({ format: 'date-time' })),
            until: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: pageOf(AuditEventView),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { query } = request;
      const time = (value: string | undefined) => (value === undefined ? undefined : parseDateTime(value));
      const page = await audit.list({
        limit: query.limit,
        offset: query.offset,
        event: query.event,
        actorId: query.actor_id,
        targetId: query.target_id,
        since: time(query.since),
        until: time(query.until),
      });
      return {
        items: page.items.map(toAuditView),
        total: page.total,
        limit: query.limit,
        offset: query.offset,
      };
    },
  );

  app.get(
    '/audit/login-failures',
    {
      preValidation: app.auth.require({ role: 'super_admin', scopes: ['audit:read'], firstParty: true }),
      schema: {
        tags: ['admin'],
        summary: 'Read failed-login tallies',
        description:
          'Wrong passwords and passkey sign-ins that did not verify are not logged one entry each (anyone can send ' +
          'them, so that would let a flood grow the database): they are counted per account and hour. `subject_id` ' +
          'is an account id, or `none` for addresses with no account, usernames that are not addresses and ' +
          'passkeys of no account. Newest hour first. Super admins only (the role as it is now, and scope ' +
          '`audit:read`): 403 `FORBIDDEN` otherwise.',
        querystring: Type.Object(
          {
            subject_id: Type.Optional(
              Type.String({
                pattern: '^(none|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$',
              }),
            ),
            limit: PageQuery.limit,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                subject_id: NullableString('The account, or null for no such account'),
                window_start: Type.String({ format: 'date-time', description: 'Start of the hour' }),
                failures: Type.Integer(),
                first_at: Type.String({ format: 'date-time' }),
                last_at: Type.String({ format: 'date-time' }),
                last_ip: NullableString(),
              }),
            ),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { query } = request;
      const subjectId = query.subject_id === 'none' ? null : query.subject_id;
      const iso = (ms: number) => new Date(ms).toISOString();
      const rows = await gatehouse.auditRetention.listLoginFailures({ subjectId, limit: query.limit });
      return {
        items: rows.map((row) => ({
          subject_id: row.subjectId,
          window_start: iso(row.windowStart),
          failures: row.failures,
          first_at: iso(row.firstAt),
          last_at: iso(row.lastAt),
          last_ip: row.lastIp,
        })),
      };
    },
  );
}
