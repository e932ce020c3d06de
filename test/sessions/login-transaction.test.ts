import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatehouseConfig } from '../../src/config/config.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { cookiesOf, createUser, PASSWORD, postToken, uniqueEmail } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { enrolTotp, postMfaGrant, requestMfaToken } from '../support/mfa.js';

/** A bcrypt hash made by passlib (test/fixtures/legacy-hashes/generate.py), and its password. */
const BCRYPT_FIXTURE: { hash: string; password: string } = JSON.parse(
  readFileSync(new URL('../fixtures/legacy-hashes/hashes.json', import.meta.url), 'utf8'),
).hashes.find((row: { hash: string }) => row.hash.startsWith('$2b$04$'));

const WRITE = /^\s*(insert|update|delete)\b/i;
const BEGIN = /^\s*(begin|start transaction)\b/i;
const END = /^\s*(commit|rollback)\b/i;

/**
 * Write transactions in a query log: a `begin … commit` block with at least one write counts
 * once, a write outside any block is a transaction of its own (autocommit). Reads never count.
 */
function countWriteTransactions(log: readonly string[]): number {
  let count = 0;
  let inBlock = false;
  let blockWrites = false;
  for (const sql of log) {
    if (BEGIN.test(sql)) {
      inBlock = true;
      blockWrites = false;
    } else if (END.test(sql)) {
      if (blockWrites) count += 1;
      inBlock = false;
    } else if (WRITE.test(sql)) {
      if (inBlock) blockWrites = true;
      // A security notice's delivery (its claim, its deletion once the relay took it) runs on its
      // own after the change committed the notice: mail work, not the change's transaction.
      else if (!/"pending_notices"/.test(sql)) count += 1;
    }
  }
  return count;
}

/**
 * The lock order (ARCHITECTURE.md, "Lock order"): the login's transaction reads its account as its
 * first statement, on PostgreSQL under the user row's `FOR KEY SHARE` (the lock its session
 * insert's foreign key takes anyway), before it spends or writes anything; that read is also the
 * re-read of the credentials version (red-team 2026-12d I3), and reads only that. One read of the account, the only
 * locking statement of the login beside the account's gate just before it.
 */
function expectAccountLockedFirst(statements: readonly string[], engine: 'sqlite' | 'postgres'): void {
  const transaction = statements.slice(statements.findIndex((sql) => BEGIN.test(sql)));
  // Its credentials version alone: nothing else of the row is used there.
  const read = /^select "credentials_version" from "users" where "id" = \S+( for key share)?$/;
  // PostgreSQL: the account's gate, shared, just before its row (`enterAccountGate`).
  const readAt = engine === 'postgres' ? 2 : 1;
  if (engine === 'postgres') expect(transaction[1]).toMatch(/^select pg_advisory_xact_lock_shared\(/);
  expect(transaction[readAt]).toMatch(read);
  expect(transaction.filter((sql) => /from "users"/.test(sql))).toHaveLength(1);
  expect(statements.filter((sql) => /for (update|share|no key update|key share)/i.test(sql))).toEqual(
    engine === 'postgres' ? [transaction[readAt]] : [],
  );
  expect(statements.filter((sql) => /pg_advisory_xact_lock_shared/.test(sql))).toHaveLength(
    engine === 'postgres' ? 1 : 0,
  );
}

/**
 * Issue 10, item 5: a login writes its session, its tokens and its audit entry in one
 * transaction, so the database work per login is one commit beside the password hash.
 */
describe.each(engines)('one write transaction per login ($name)', ({ name }) => {
  describe.each<GatehouseConfig['tokenStrategy']>(['jwt', 'database'])('token strategy %s', (strategy) => {
    let app: FastifyInstance;
    let drop: () => Promise<void>;
    const log: string[] = [];

    beforeAll(async () => {
      const database = await createTestDatabaseUrl(name);
      drop = database.drop;
      app = await buildTestServer(
        { databaseUrl: database.url, tokenStrategy: strategy },
        { onQuery: (sql) => void log.push(sql) },
      );
    });
    afterAll(async () => {
      await app?.close();
      await drop?.();
    });

    /** Runs `work` and returns the statements it ran. */
    const logOf = async (work: () => Promise<unknown>): Promise<string[]> => {
      // The previous test's background work (a notice's delivery) done first: not this one's.
      await gatehouseCore(app.gatehouse).lifecycle.idle();
      log.length = 0;
      await work();
      return [...log];
    };

    it('POST /token (password grant): one transaction holds the session, refresh token and audit row', async () => {
      const user = await createUser(app);
      let status = 0;
      let sessionId = '';
      const statements = await logOf(async () => {
        const response = await postToken(app, {
          grant_type: 'password',
          username: user.email,
          password: PASSWORD,
        });
        status = response.statusCode;
        const session = await gatehouseCore(app.gatehouse).sessionStore.listLiveSessions(user.id, Date.now());
        sessionId = session[0]?.id ?? '';
      });
      expect(status).toBe(200);
      expect(countWriteTransactions(statements)).toBe(1);
      expectAccountLockedFirst(statements, name);
      // The control: the counted transaction does write all three.
      const writes = statements.filter((sql) => WRITE.test(sql)).join('\n');
      expect(writes).toMatch(/insert into "sessions"/);
      expect(writes).toMatch(/insert into "refresh_tokens"/);
      expect(writes).toMatch(/insert into "audit_events"/);
      if (strategy === 'database') expect(writes).toMatch(/insert into "access_tokens"/);
      const entries = await gatehouseCore(app.gatehouse).audit.list({
        limit: 10,
        offset: 0,
        event: 'login_succeeded',
      });
      expect(entries.items.some((entry) => entry.details?.session === sessionId)).toBe(true);
    });

    it('POST /token (mfa-otp grant): the recovery code, the mfa_token, the session, its tokens and both audit rows are one transaction', async () => {
      const { user, recoveryCodes } = await enrolTotp(app, Date.now());
      const token = await requestMfaToken(app, user.email);
      let status = 0;
      const statements = await logOf(async () => {
        status = (await postMfaGrant(app, token, String(recoveryCodes[0]))).statusCode;
      });
      expect(status).toBe(200);
      expect(countWriteTransactions(statements)).toBe(1);
      expectAccountLockedFirst(statements, name);
      const writes = statements.filter((sql) => WRITE.test(sql)).join('\n');
      expect(writes).toMatch(/insert into "spent_challenges"/);
      expect(writes).toMatch(/update "mfa_recovery_codes"/);
      expect(writes).toMatch(/insert into "sessions"/);
      expect(writes).toMatch(/insert into "refresh_tokens"/);
      expect(writes.match(/insert into "audit_events"/g)).toHaveLength(2);
      if (strategy === 'database') expect(writes).toMatch(/insert into "access_tokens"/);
    });

    it("an imported bcrypt user's first login upgrades the hash to argon2id in that same transaction", async () => {
      const email = uniqueEmail('imported');
      const { hash, password } = BCRYPT_FIXTURE;
      async function* rows() {
        yield { line: 2, fields: { email, hashed_password: hash } };
      }
      expect((await gatehouseCore(app.gatehouse).userImport.importUsers(rows())).imported).toBe(1);
      let status = 0;
      const statements = await logOf(async () => {
        status = (await postToken(app, { grant_type: 'password', username: email, password })).statusCode;
      });
      expect(status).toBe(200);
      expect(countWriteTransactions(statements)).toBe(1);
      const writes = statements.filter((sql) => WRITE.test(sql)).join('\n');
      expect(writes).toMatch(/update "users" set "password_hash"/);
      expect(writes).toMatch(/insert into "sessions"/);
      // The lock order: the strongest lock the login takes on the user row (the upgrade's UPDATE
      // takes FOR NO KEY UPDATE) is taken first, so it is never strengthened while another
      // transaction waits for the row (a password change's FOR UPDATE would deadlock with it).
      const transaction = statements.slice(statements.findIndex((sql) => BEGIN.test(sql)));
      // PostgreSQL: after the account's gate, shared (`enterAccountGate`).
      expect(transaction[name === 'postgres' ? 2 : 1]).toMatch(
        name === 'postgres'
          ? /^select "credentials_version" from "users" where "id" = \S+ for no key update$/
          : /^select "credentials_version" from "users" where "id" = \S+$/,
      );
      const upgraded = await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email);
      expect(upgraded?.passwordHash.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
      // The second login verifies the new hash and writes no upgrade.
      const again = await logOf(async () => {
        status = (await postToken(app, { grant_type: 'password', username: email, password })).statusCode;
      });
      expect(status).toBe(200);
      expect(again.filter((sql) => /update "users"/.test(sql))).toEqual([]);
    });

    it('POST /auth/login over an existing session: ending it, the new session and the audit row are one transaction', async () => {
      const user = await createUser(app);
      const jar = new Map<string, string>();
      /** A browser: sends the jar's cookies, keeps what the server sets. */
      const request = async (method: 'GET' | 'POST', url: string, headers = {}, payload?: object) => {
        const cookie = [...jar].map(([key, value]) => `${key}=${value}`).join('; ');
        const response = await app.inject({ method, url, headers: { cookie, ...headers }, payload });
        for (const [key, { value }] of cookiesOf(response)) jar.set(key, value);
        return response;
      };
      const signIn = async () => {
        const csrf = (await request('GET', '/auth/csrf')).json().csrf_token;
        return request(
          'POST',
          '/auth/login',
          { 'x-csrf-token': csrf },
          { email: user.email, password: PASSWORD },
        );
      };
      expect((await signIn()).statusCode).toBe(204);
      const csrf = (await request('GET', '/auth/csrf')).json().csrf_token;
      let status = 0;
      const statements = await logOf(async () => {
        const second = await request(
          'POST',
          '/auth/login',
          { 'x-csrf-token': csrf },
          { email: user.email, password: PASSWORD },
        );
        status = second.statusCode;
      });
      expect(status).toBe(204);
      expect(countWriteTransactions(statements)).toBe(1);
      expectAccountLockedFirst(statements, name);
      const writes = statements.filter((sql) => WRITE.test(sql)).join('\n');
      expect(writes).toMatch(/update "sessions"/);
      expect(writes).toMatch(/insert into "sessions"/);
      expect(writes).toMatch(/insert into "audit_events"/);
      const sessions = await gatehouseCore(app.gatehouse).sessionStore.listLiveSessions(user.id, Date.now());
      expect(sessions).toHaveLength(1);
    });

    it('PATCH /users/me with a new password: the hash, then the end of the other sessions, in one transaction', async () => {
      const user = await createUser(app);
      const other = await postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: PASSWORD,
      });
      const own = await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD });
      let status = 0;
      const statements = await logOf(async () => {
        const changed = await app.inject({
          method: 'PATCH',
          url: '/users/me',
          headers: { authorization: `Bearer ${own.json().access_token}` },
          payload: { password: 'another long passphrase', current_password: PASSWORD },
        });
        status = changed.statusCode;
      });
      expect(status).toBe(200);
      // Red-team 2026-12d I3: the sessions used to end first, in a statement of their own, and a
      // login with the old password that ran between the two kept its session.
      const hash = statements.findIndex((sql) => /update "users" set .*"password_hash"/.test(sql));
      const moved = statements.findIndex((sql) => /update "users" set "credentials_version"/.test(sql));
      const revoke = statements.findIndex((sql) => /update "sessions" set "revoked_at"/.test(sql));
      const begin = statements.findLastIndex((sql, i) => BEGIN.test(sql) && i < hash);
      const commit = statements.findIndex((sql, i) => END.test(sql) && i > hash);
      expect({
        begin: begin >= 0,
        hashFirst: hash < moved && moved < revoke,
        oneCommit: revoke < commit,
      }).toEqual({ begin: true, hashFirst: true, oneCommit: true });
      const verify = await app.inject({
        url: '/users/me',
        headers: { authorization: `Bearer ${other.json().access_token}` },
      });
      expect(verify.statusCode).toBe(401);
    });
  });
});
