import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { type DatabaseState, pingDatabase } from '../../storage/ping-database.js';

/**
 * How long `/readyz` waits for each dependency. Both are checked in parallel, so the probe answers
 * within about this long (under the 1 s that load balancers' probe timeouts commonly allow).
 */
export const READINESS_CHECK_TIMEOUT_MS = 800;

/** `/readyz`'s body: overall status and each dependency's state. */
export const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready'), Type.Literal('starting')]),
  database: Type.Union(
    [
      Type.Literal('up'),
      Type.Literal('down'),
      Type.Literal('read-only'),
      Type.Literal('moved'),
      Type.Literal('full'),
    ],
    {
      description:
        '`read-only`: the database answers but refuses writes (a PostgreSQL standby after a failover, or ' +
        '`default_transaction_read_only`); logins and sign-ups would all fail, so the instance is not ready. ' +
        '`moved`: the SQLite file was deleted, renamed or replaced while open; the server still writes to ' +
        'the file it opened, which the next start will not read. `full`: the SQLite file is at `max_page_count`, or ' +
        'its file system has less than 1 MiB left; every write (a sign-in) would fail with 503',
    },
  ),
  redis: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('disabled')]),
  secret_key: Type.Optional(
    Type.Literal('superseded', {
      description:
        "Present when `gatehouse revoke-all` replaced this instance's SECRET_KEY while it ran: it refuses " +
        'every signed token, answers 503 on every Gatehouse route but /healthz, /readyz and the JWK Set, ' +
        'and stays not ready until restarted with the new secret',
    }),
  ),
});

/** Liveness, readiness and (for asymmetric keys) the JWK Set. */
export function registerOpsRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();

  // One check at a time, shared by every probe that arrives while it runs: `/readyz` needs no
  // credentials, and a flood of it ran a database query and a Redis PING per request, taking pool
  // connections from sign-ins (operator red-team 2026-12-04). An answer is at most one check old
  // (≤ READINESS_CHECK_TIMEOUT_MS): a probe arriving after a check ended starts its own.
  let running: Promise<[DatabaseState, 'up' | 'down' | 'disabled']> | undefined;
  const checkDependencies = () => {
    running ??= Promise.all([
      pingDatabase(gatehouse.database, READINESS_CHECK_TIMEOUT_MS),
      gatehouse.checkRedis(READINESS_CHECK_TIMEOUT_MS),
    ]).finally(() => {
      running = undefined;
    });
    return running;
  };
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process is up',
        description:
          'Answers 200 `{"status":"ok"}` while the process serves HTTP, from the first moment it listens ' +
          '(before the database is reached) until shutdown; it checks no dependency. Use `/readyz` to ' +
          'decide whether to send traffic.',
        response: { 200: Type.Object({ status: Type.String() }) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Readiness: the database answers (Redis is reported, never required)',
        description:
          'Answers within about a second whatever the dependencies do. 503 while the database is down, ' +
          'frozen, slower than the probe or read-only, while the server is still starting, or once ' +
          "`gatehouse revoke-all` replaced this instance's SECRET_KEY. Redis is an " +
          'accelerator: its state is reported but a Redis outage keeps the instance ready, so a load ' +
          'balancer does not drop every instance at once.',
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (request, reply) => {
      const [database, redis] = await checkDependencies();
      if (gatehouse.secretSuperseded()) {
        request.log.warn(
          'readiness check: SECRET_KEY superseded by gatehouse revoke-all; restart with the new one',
        );
        return reply
          .code(503)
          .send({ status: 'not ready', database, redis, secret_key: 'superseded' as const });
      }
      if (database !== 'up') {
        if (database === 'moved') {
          // An error, not a warning: data is at stake, and only this process can still save it.
          request.log.error(
            { pid: process.pid },
            'readiness check: the SQLite database file was deleted, renamed or replaced while the server ' +
              'had it open; writes since then are only in the open file, which the next start will not ' +
              'read. Before stopping, copy it out: ls -l /proc/<pid>/fd shows it (marked "(deleted)" if gone)',
          );
        } else {
          request.log.warn(
            database === 'down'
              ? 'readiness check: the database did not answer'
              : database === 'full'
                ? 'readiness check: no room left to write the SQLite file (its disk, or max_page_count)'
                : 'readiness check: the database is read-only (a standby, or default_transaction_read_only)',
          );
        }
        return reply.code(503).send({ status: 'not ready', database, redis });
      }
      return { status: 'ready' as const, database, redis };
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['ops'],
        summary: 'Public signing keys (JWK Set, RFC 7517)',
        description:
          'The keys of access tokens and ID tokens with an asymmetric JWT_ALG; with HS256 (whose shared secret ' +
          'is never published) the ES256 keys of ID tokens only. Plus, unless JWT_ALG is RS256, the RS256 keys of ' +
          'the ID tokens of clients that chose RS256 (OpenID Connect Core §15.1). Each key names its `alg` and `kid`.',
        response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) },
      },
    },
    async (_request, reply) => {
      const { keys, complete } = await gatehouse.idTokenKeys.jwks();
      // A set missing keys that could not be loaded must not be cached for five minutes.
      return reply.header('cache-control', complete ? 'public, max-age=300' : 'no-store').send({ keys });
    },
  );
}
