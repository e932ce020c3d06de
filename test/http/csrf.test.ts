import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { PASSWORD, uniqueEmail } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

/**
 * Red-team (Medium), a rolling SECRET_KEY rotation behind one load balancer: a CSRF token an
 * instance still on the old secret issued was refused (CSRF_TOKEN_INVALID) at one on the new secret.
 */
describe('CSRF tokens through a SECRET_KEY rotation', () => {
  const oldKey = new Uint8Array(randomBytes(32));
  const newKey = new Uint8Array(randomBytes(32));
  let old: FastifyInstance;
  let rotating: FastifyInstance;
  let rotated: FastifyInstance;

  beforeAll(async () => {
    old = await buildTestServer({ secretKey: oldKey });
    rotating = await buildTestServer({ secretKey: newKey, secretKeyPrevious: oldKey });
    rotated = await buildTestServer({ secretKey: newKey });
  });
  afterAll(async () => {
    await old?.close();
    await rotating?.close();
    await rotated?.close();
  });

  /** A login posted to `app` with the cookies and token a browser got from the old instance. */
  const loginWithOldToken = async (app: FastifyInstance) => {
    const first = new Browser(old);
    const token = await first.csrf();
    const next = new Browser(app);
    for (const [name, value] of first.jar) next.jar.set(name, value);
    return next.request('POST', '/auth/login', {
      headers: { 'x-csrf-token': token },
      payload: { email: uniqueEmail('nobody'), password: PASSWORD },
    });
  };

  it('passes at an instance with SECRET_KEY_PREVIOUS, and not without it', async () => {
    // Past the CSRF check: the login itself is then refused (no such account).
    const passed = await loginWithOldToken(rotating);
    expect(passed.statusCode, passed.body).toBe(400);
    expect(passed.json().code).toBe('INVALID_CREDENTIALS');
    const refused = await loginWithOldToken(rotated);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe('CSRF_TOKEN_INVALID');
  });
});
