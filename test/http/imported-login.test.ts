import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImportRecord } from '../../src/accounts/user-import.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { postToken, uniqueEmail } from '../support/accounts.js';

interface Fixture {
  library: string;
  scheme: string;
  password: string;
  hash: string;
}

/** Real hashes made by passlib, pyca/bcrypt, argon2-cffi and Django (see generate.py there). */
const FIXTURES: Fixture[] = JSON.parse(
  readFileSync(new URL('../fixtures/legacy-hashes/hashes.json', import.meta.url), 'utf8'),
).hashes;

const CURRENT = '$argon2id$v=19$m=19456,t=2,p=1$';
const CALLER = {
  client: { ip: '203.0.113.50', userAgent: 'test' },
  onAuditLost: () => {},
};

/**
 * Issue 12, item 6: users imported from a FastAPI (passlib) or Django app sign in with their old
 * password, and that first login re-hashes it with our argon2id parameters.
 */
describe('signing in with an imported legacy hash', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => {
    await app?.close();
  });

  const importUser = async (hash: string, fields: Record<string, unknown> = {}) => {
    const email = uniqueEmail('imported');
    async function* rows(): AsyncGenerator<ImportRecord> {
      yield { line: 2, fields: { email, hashed_password: hash, ...fields } };
    }
    const result = await gatehouseCore(app.gatehouse).userImport.importUsers(rows());
    expect(result.imported).toBe(1);
    return email;
  };

  const grant = (email: string, password: string) =>
    postToken(app, { grant_type: 'password', username: email, password });

  it.each(FIXTURES.map((fixture) => [fixture.library, fixture] as const))(
    '%s: the old password works, and the hash becomes argon2id',
    async (_library, fixture) => {
      const email = await importUser(fixture.hash);
      const wrong = await grant(email, `${fixture.password}!`);
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().error).toBe('invalid_grant');
      expect((await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email))?.passwordHash).toBe(
        fixture.hash,
      );

      const first = await grant(email, fixture.password);
      expect(first.statusCode).toBe(200);
      const stored = (await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email))?.passwordHash ?? '';
      expect(stored.startsWith(CURRENT)).toBe(true);
      // The upgraded hash is of the NFKC form, which every later login compares: the same
      // password, typed the same way, still works.
      expect((await grant(email, fixture.password)).statusCode).toBe(200);
      expect((await grant(email, `${fixture.password}!`)).statusCode).toBe(400);
    },
  );

  it('upgrades on a browser sign-in too', async () => {
    const fixture = FIXTURES.find((row) => row.hash.startsWith('$pbkdf2-sha256$'));
    if (fixture === undefined) throw new Error('fixture missing');
    const email = await importUser(fixture.hash);
    const signIn = await gatehouseCore(app.gatehouse).selfService.signIn(
      { email, password: fixture.password },
      CALLER,
    );
    expect(signIn.ok).toBe(true);
    expect(
      (await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email))?.passwordHash.startsWith(CURRENT),
    ).toBe(true);
  });

  it('keeps a disabled imported account out, even with the right password, and does not upgrade it', async () => {
    const fixture = FIXTURES.find((row) => row.hash.startsWith('$2a$04$'));
    if (fixture === undefined) throw new Error('fixture missing');
    const email = await importUser(fixture.hash, { disabled: true });
    const response = await grant(email, fixture.password);
    expect(response.statusCode).toBe(400);
    expect(response.json().error_description).toMatch(/disabled/);
    expect((await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email))?.passwordHash).toBe(
      fixture.hash,
    );
  });

  it('never lets the upgrade undo a password change that committed in between (compare-and-set)', async () => {
    const fixture = FIXTURES.find((row) => row.hash.startsWith('$2y$04$'));
    if (fixture === undefined) throw new Error('fixture missing');
    const email = await importUser(fixture.hash);
    const user = await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email);
    if (user === undefined) throw new Error('not imported');
    const changed = await gatehouseCore(app.gatehouse).hasher.hash('a brand new passphrase here');
    await gatehouseCore(app.gatehouse).users.updateUser(user.id, { passwordHash: changed }, Date.now());
    // What a login that verified the old hash would now try to store:
    const replaced = await gatehouseCore(app.gatehouse).users.replacePasswordHash(
      user.id,
      fixture.hash,
      'stale',
      Date.now(),
    );
    expect(replaced).toBe(false);
    expect((await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email))?.passwordHash).toBe(changed);
  });
});
