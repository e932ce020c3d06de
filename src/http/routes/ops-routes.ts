import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Gatehouse } from '../../gatehouse.js';

/** Liveness, readiness and (for asymmetric keys) the JWK Set. */
export function registerOpsRoutes(app: FastifyInstance, gatehouse: Gatehouse): void {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process is up',
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
        summary: 'Readiness: the database answers',
        response: {
          200: Type.Object({ status: Type.String() }),
          503: Type.Object({ status: Type.String() }),
        },
      },
    },
    async (request, reply) => {
      try {
        await sql`select 1`.execute(gatehouse.database.db);
        return { status: 'ready' };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        return reply.code(503).send({ status: 'database unavailable' });
      }
    },
  );

  if (gatehouse.keyring.algorithm !== 'HS256') {
    app.get(
      '/.well-known/jwks.json',
      {
        schema: {
          tags: ['ops'],
          summary: 'Public signing keys (JWK Set, RFC 7517)',
          response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) },
        },
      },
      async (_request, reply) =>
        reply.header('cache-control', 'public, max-age=300').send(gatehouse.keyring.jwks()),
    );
  }
}
