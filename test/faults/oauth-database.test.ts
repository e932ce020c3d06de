import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { MFA_OTP_GRANT_TYPE } from '../../src/sessions/token-grants.js';
import { PASSWORD } from '../support/accounts.js';
import {
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from '../support/private-postgres.js';
import { createServiceClient, run } from '../support/run-cli.js';
import { type Answer, callServer, formPost, jsonPost, readinessBecomes } from '../support/server-calls.js';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * The database calls added with OAuth service clients and account recovery (client_credentials,
 * introspection, forgot-password, room snapshots), against a private PostgreSQL that is frozen
 * (SIGSTOP: connections open, no answers) and then stopped. Every request must end within the
 * bound with 503 (RFC 6749 `temporarily_unavailable` on /token and /introspect, problem+json
 * elsewhere) or with the documented degraded answer: never a 500, never a hang, never a client
 * refused as unknown because its row could not be read.
 */
const CONNECT_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 1000;
/** Query timeout (statement timeout + 1 s) or connect timeout, plus slack for two busy cores. */
const HANG_BOUND_MS = STATEMENT_TIMEOUT_MS + 1000 + 2000;

const call = (server: ServerProcess, path: string, init: RequestInit = {}) =>
  callServer(server, path, init, HANG_BOUND_MS);

function expectOAuthUnavailable(answer: Answer): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(503);
  expect(answer.body).toMatchObject({ error: 'temporarily_unavailable' });
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(answer.headers.get('cache-control')).toBe('no-store');
}

function expectProblemUnavailable(answer: Answer): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(503);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
}

describe.skipIf(!runPostgresFaultTests)(
  'OAuth service clients, introspection, recovery and rooms with PostgreSQL frozen or stopped',
  { timeout: 120_000 },
  () => {
    let postgres: PrivatePostgres;
    let server: ServerProcess;
    let basic: string;
    let clientToken: string;
    let userToken: string;
    let roomCode: string;
    let env: Record<string, string>;
    const email = `oauth-faults.${process.pid}@example.com`;

    beforeAll(async () => {
      postgres = await startPrivatePostgres();
      env = {
        DATA_DIR: tempDir('gh-oauth-faults-'),
        DATABASE_URL: postgres.url,
        DATABASE_CONNECT_TIMEOUT: `${CONNECT_TIMEOUT_MS}ms`,
        DATABASE_STATEMENT_TIMEOUT: `${STATEMENT_TIMEOUT_MS}ms`,
        SECRET_KEY: 'fault-test-secret-fault-test-secret-0123456789',
      };
      ({ basic } = await createServiceClient(env, 'clothes:read'));
      server = await startServerProcess(env);
      await server.waitFor(/Gatehouse is ready/);
      const issued = await call(
        server,
        '/token',
        formPost({ grant_type: 'client_credentials' }, { authorization: basic }),
      );
      expect(issued.status, JSON.stringify(issued.body)).toBe(200);
      clientToken = String(issued.body.access_token);
      expect((await call(server, '/auth/register', jsonPost({ email, password: PASSWORD }))).status).toBe(
        201,
      );
      const login = await call(
        server,
        '/token',
        formPost({ grant_type: 'password', username: email, password: PASSWORD }),
      );
      userToken = String(login.body.access_token);
      const room = await call(
        server,
        '/rooms',
        jsonPost({ name: 'Outage' }, { authorization: `Bearer ${userToken}` }),
      );
      expect(room.status).toBe(201);
      roomCode = String(room.body.code);
    });

    afterAll(async () => {
      if (server?.alive()) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
      postgres?.dispose();
    });

    /** Every call under test, each answered within the bound (a hang rejects the fetch). */
    const underFault = async () => {
      const [grant, introspect, forgot, room, links] = await Promise.all([
        call(server, '/token', formPost({ grant_type: 'client_credentials' }, { authorization: basic })),
        call(server, '/introspect', formPost({ token: clientToken }, { authorization: basic })),
        call(server, '/auth/forgot-password', jsonPost({ email })),
        call(server, `/rooms/${roomCode}`, { headers: { authorization: `Bearer ${userToken}` } }),
        call(
          server,
          `/rooms/${roomCode}/spectator-links`,
          jsonPost({}, { authorization: `Bearer ${userToken}` }),
        ),
      ]);
      // The client's row cannot be read, so it cannot be authenticated: unavailable, never
      // invalid_client (the client would drop a good secret) and never a token.
      expectOAuthUnavailable(grant);
      expectOAuthUnavailable(introspect);
      // The look-up runs after the answer (no account enumeration by timing): 202 as always; it is
      // lost with the outage, which the person retries.
      expect(forgot.status).toBe(202);
      expectProblemUnavailable(room);
      expectProblemUnavailable(links);
    };

    it('frozen: answers 503 within the bound, then recovers after the thaw', async () => {
      postgres.freeze();
      try {
        await underFault();
      } finally {
        postgres.thaw();
      }
      // Calls fail fast until the pool's probe reaches the server again (a fraction of a second).
      expect((await readinessBecomes(server, 200, HANG_BOUND_MS)).status).toBe(200);
      const again = await call(
        server,
        '/token',
        formPost({ grant_type: 'client_credentials' }, { authorization: basic }),
      );
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(server.alive()).toBe(true);
    });

    it('an mfa_token answered while PostgreSQL is frozen: 503, and the same token and code work after the thaw', async () => {
      // An account with an authenticator; the confirming code used up the current 30 s step. Made by
      // the CLI, whose accounts have a verified address (a second factor needs one).
      const mfaEmail = `mfa.${email}`;
      const made = await run(['create-user', '--email', mfaEmail], env, `${PASSWORD}\n`);
      expect(made.code, made.stderr).toBe(0);
      const password = formPost({ grant_type: 'password', username: mfaEmail, password: PASSWORD });
      const signedIn = await call(server, '/token', password);
      const auth = { authorization: `Bearer ${String(signedIn.body.access_token)}` };
      const started = await call(server, '/users/me/mfa/totp', { method: 'POST', headers: auth });
      expect(started.status).toBe(201);
      const secret = String(started.body.secret);
      const confirmed = await call(
        server,
        '/users/me/mfa/totp/confirm',
        jsonPost({ code: generateTotpCode(secret, Date.now()) }, auth),
      );
      expect(confirmed.status).toBe(200);
      const challenged = await call(server, '/token', password);
      expect(challenged.body).toMatchObject({ error: 'mfa_required' });
      const mfaToken = String(challenged.body.mfa_token);
      // The next step's code: accepted within the TOTP window, not yet used.
      const otp = generateTotpCode(secret, Date.now() + 30_000);
      const answer = formPost({ grant_type: MFA_OTP_GRANT_TYPE, mfa_token: mfaToken, otp });
      postgres.freeze();
      try {
        expectOAuthUnavailable(await call(server, '/token', answer));
      } finally {
        postgres.thaw();
      }
      expect((await readinessBecomes(server, 200, HANG_BOUND_MS)).status).toBe(200);
      // Nothing was spent by the try that could not reach the database: neither the code's step,
      // nor the mfa_token's single use.
      const completed = await call(server, '/token', answer);
      expect(completed.status, JSON.stringify(completed.body)).toBe(200);
      expect(completed.body.access_token).toEqual(expect.any(String));
    });

    it('stopped: answers 503 at once, then recovers when it is back', async () => {
      postgres.stop();
      try {
        await underFault();
      } finally {
        postgres.start();
      }
      expect((await readinessBecomes(server, 200, HANG_BOUND_MS)).status).toBe(200);
      const again = await call(
        server,
        '/introspect',
        formPost({ token: clientToken }, { authorization: basic }),
      );
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body).toMatchObject({ active: true });
      expect(server.alive()).toBe(true);
    });
  },
);
