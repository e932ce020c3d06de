import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createGatehouse } from '../../src/gatehouse.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { testConfig } from '../../src/testing.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

/**
 * Operator red-team 2026-12-04: migrations ran on the server's pool, whose statements end after
 * DATABASE_STATEMENT_TIMEOUT (server- and client-side). A migration rewriting a big table failed as
 * "cannot reach the database", and a starting server retried it forever. They now run on a pool of
 * their own with MIGRATION_STATEMENT_TIMEOUT_MS.
 */
describe.runIf(engines.some((engine) => engine.name === 'postgres'))(
  'a migration longer than DATABASE_STATEMENT_TIMEOUT (PostgreSQL)',
  () => {
    it('completes at start-up with a 10 s lock wait, and the server keeps its own short statement timeout', async () => {
      const { url, drop } = await createTestDatabaseUrl('postgres');
      // Both starts as one deployment: one SECRET_KEY (the database checks it).
      const secretKey = new Uint8Array(randomBytes(32));
      let lockWait: string | undefined;
      try {
        const gatehouse = await createGatehouse(
          testConfig({ databaseUrl: url, databaseStatementTimeoutMs: 1000, secretKey }),
          {
            migrations: {
              probe: {
                '001-slow': {
                  up: async (db) => {
                    await sql`select pg_sleep(1.6)`.execute(db);
                    const { rows } = await sql<{
                      wait: string;
                    }>`select current_setting('lock_timeout') as wait`.execute(db);
                    lockWait = rows[0]?.wait;
                  },
                },
              },
            },
          },
        );
        await gatehouse.close();
        // A schema change behind a long reader fails after 10 s instead of queueing every request.
        expect(lockWait).toBe('10s');
        // The server's own pool still cancels a statement past its timeout.
        const again = await createGatehouse(
          testConfig({ databaseUrl: url, databaseStatementTimeoutMs: 1000, secretKey }),
        );
        try {
          const core = gatehouseCore(again);
          await expect(sql`select pg_sleep(1.6)`.execute(core.database.db)).rejects.toThrow(
            /statement timeout/,
          );
        } finally {
          await again.close();
        }
      } finally {
        await drop();
      }
    });
  },
);
