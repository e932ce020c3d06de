import { CompiledQuery, createQueryId, type KyselyPlugin, type RootOperationNode, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { createOAuthGrantStore } from '../../../src/storage/oauth-grant-store.js';
import { engines } from '../../support/databases.js';
import {
  insertOldUser,
  migrateDownAndUp,
  migrateOnly,
  migrationsBefore,
  withTestDatabase,
} from '../../support/old-schema.js';

const NAME = '031a-session-client-live-index';

const { before: BEFORE, previous: PREVIOUS_HEAD } = migrationsBefore(NAME);

describe.each(engines)('migration 031a-session-client-live-index on $name', ({ name: engine }) => {
  it("finds a client's live sessions through the index, not a scan of every session, and migrates down and up", async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      const session = (id: string, clientId: string, revokedAt: number | null) => ({
        id,
        user_id: 'owner',
        transport: 'bearer',
        scope: 'openid',
        created_at: 1,
        last_used_at: 1,
        expires_at: 10_000_000_000_000,
        revoked_at: revokedAt,
        user_agent: null,
        ip: null,
        auth_time: 1,
        amr: 'pwd',
        client_id: clientId,
      });
      await raw
        .insertInto('sessions')
        .values([
          session('app-live', 'app', null),
          session('app-ended', 'app', 2),
          session('first-party', 'gatehouse', null),
        ])
        .execute();

      expect((await migrateToLatest(database)).applied).toContain(NAME);
      // The store's own statement, as it runs: captured, then explained.
      const seen: RootOperationNode[] = [];
      const spy: KyselyPlugin = {
        transformQuery: ({ node }) => {
          seen.push(node);
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      const grants = createOAuthGrantStore(database.db.withPlugin(spy));
      expect(await grants.sessionsOfClient('app', undefined, 500)).toEqual(['app-live']);
      // The first party is never a registered client: nothing to look up.
      expect(await grants.sessionsOfClient('gatehouse')).toEqual([]);
      expect(seen).toHaveLength(1);
      const [node] = seen;
      if (node === undefined) throw new Error('no statement');
      const compiled = database.db.getExecutor().compileQuery(node, createQueryId());
      const plan = await database.db.transaction().execute(async (trx) => {
        // A three-row table is cheaper to scan: ask PostgreSQL whether the index can serve at all.
        if (engine === 'postgres') await sql`set local enable_seqscan = off`.execute(trx);
        const prefix = engine === 'postgres' ? 'explain ' : 'explain query plan ';
        const rows = await trx.executeQuery(
          CompiledQuery.raw(prefix + compiled.sql, [...compiled.parameters]),
        );
        return JSON.stringify(rows.rows);
      });
      expect(plan).toContain('sessions_client_live_idx');

      await migrateDownAndUp(database, PREVIOUS_HEAD, async () => {
        expect(await createOAuthGrantStore(database.db).sessionsOfClient('app')).toEqual(['app-live']);
      });
    });
  });
});
