import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { enrolTotp, postMfaGrant, requestMfaToken } from '../support/mfa.js';
import {
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from '../support/private-postgres.js';

const STATEMENT_TIMEOUT_MS = 3000;
/** The client gives up a statement 1 s after the server's timeout; slack for two busy cores. */
const HANG_BOUND_MS = STATEMENT_TIMEOUT_MS + 1000 + 3000;

/**
 * The second step of an MFA login with its transaction open on a private PostgreSQL when the
 * server is killed (a crash: connections gone mid-transaction) or frozen (nothing answers). The
 * transaction is held open at its last write (the `login_succeeded` audit row, after the
 * recovery code, the `mfa_token`, the session and its refresh token) by a trigger that sleeps.
 * Whatever happens, the request ends within the bound with 503 and nothing was spent: the same
 * `mfa_token` and recovery code sign in once the database is back.
 */
describe.skipIf(!runPostgresFaultTests)(
  'MFA login with PostgreSQL killed or frozen mid-transaction (private PostgreSQL)',
  { timeout: 120_000 },
  () => {
    let postgres: PrivatePostgres;
    let app: FastifyInstance;

    beforeAll(async () => {
      postgres = await startPrivatePostgres();
      app = await buildTestServer({
        databaseUrl: `${postgres.url}${postgres.url.includes('?') ? '&' : '?'}application_name=gatehouse_mfa_fault`,
        databaseConnectTimeoutMs: 1000,
        databaseStatementTimeoutMs: STATEMENT_TIMEOUT_MS,
      });
    });
    afterAll(async () => {
      await app?.close();
      postgres?.dispose();
    });

    /** Holds every login transaction open at its audit row (for longer than any test waits). */
    const holdLogins = () => {
      postgres.psql(
        `create or replace function gh_test_hold() returns trigger language plpgsql as $$
         begin perform pg_sleep(60); return new; end $$`,
      );
      postgres.psql(
        `create trigger gh_test_hold before insert on audit_events for each row
         when (new.event = 'login_succeeded') execute function gh_test_hold()`,
      );
    };
    const release = () => postgres.psql('drop trigger if exists gh_test_hold on audit_events');

    /** Waits until a backend of the server sleeps inside the trigger. */
    const waitForHeldTransaction = async () => {
      const deadline = Date.now() + HANG_BOUND_MS;
      while (Date.now() < deadline) {
        const held = postgres.psql(
          "select count(*) from pg_stat_activity where application_name = 'gatehouse_mfa_fault' and wait_event = 'PgSleep'",
        );
        if (Number(held) > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('the login transaction never reached its audit row');
    };

    /** Waits until the server answers reads from the database again. */
    const waitForDatabase = async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ready = await app.inject({ method: 'GET', url: '/readyz' });
        if (ready.statusCode === 200) return;
        if (Date.now() > deadline) throw new Error(`not ready: ${ready.body}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };

    const expectUnavailable = (response: LightMyRequestResponse, started: number) => {
      expect(Date.now() - started).toBeLessThan(HANG_BOUND_MS);
      expect(response.statusCode, response.body).toBe(503);
      expect(response.json()).toMatchObject({ error: 'temporarily_unavailable' });
    };

    /** The fault, applied while a completion's transaction is open; then the retry. */
    const survives = async (fault: () => void, recover: () => Promise<void>) => {
      const { user, recoveryCodes } = await enrolTotp(app, Date.now());
      const code = String(recoveryCodes[0]);
      const token = await requestMfaToken(app, user.email);
      holdLogins();
      const started = Date.now();
      const pending = postMfaGrant(app, token, code);
      await waitForHeldTransaction();
      fault();
      const failed = await pending;
      expectUnavailable(failed, started);
      await recover();
      release();
      const core = gatehouseCore(app.gatehouse);
      expect(await core.sessionStore.listLiveSessions(user.id, Date.now())).toEqual([]);
      expect((await core.mfa.status(user.id)).recoveryCodesLeft).toBe(10);
      const retried = await postMfaGrant(app, token, code);
      expect(retried.statusCode, retried.body).toBe(200);
      expect((await core.mfa.status(user.id)).recoveryCodesLeft).toBe(9);
      expect(await core.sessionStore.listLiveSessions(user.id, Date.now())).toHaveLength(1);
    };

    it('killed: the transaction dies with its connection; the same mfa_token and code work after restart', async () => {
      await survives(
        () => postgres.kill(),
        async () => {
          postgres.start();
          await waitForDatabase();
        },
      );
    });

    it('frozen: the request ends with 503 within the bound, and nothing it wrote commits after the thaw', async () => {
      await survives(
        () => postgres.freeze(),
        async () => {
          postgres.thaw();
          await waitForDatabase();
          // The backend that slept in the trigger lost its client: its transaction is rolled back.
          const deadline = Date.now() + 10_000;
          while (
            Number(
              postgres.psql(
                "select count(*) from pg_stat_activity where application_name = 'gatehouse_mfa_fault' and wait_event = 'PgSleep'",
              ),
            ) > 0
          ) {
            if (Date.now() > deadline) throw new Error('the abandoned transaction is still open');
            postgres.psql(
              "select pg_cancel_backend(pid) from pg_stat_activity where application_name = 'gatehouse_mfa_fault' and wait_event = 'PgSleep'",
            );
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        },
      );
    });
  },
);
