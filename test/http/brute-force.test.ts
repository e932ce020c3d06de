import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';

describe('failed-login limits (RFC 6749 §4.3.2)', () => {
  let app: FastifyInstance;
  afterEach(async () => app.close());

  it('limits an account, still refuses the right password while limited, and lifts on its own', async () => {
    const clock = createTestClock();
    app = await buildTestServer({ loginMaxFailuresPerAccount: 3, loginFailureWindow: 600 }, { clock });
    const user = await createUser(app);
    for (let i = 0; i < 3; i++) {
      const wrong = await postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: 'wrong password!',
      });
      expect(wrong.statusCode).toBe(400);
    }
    const limited = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: PASSWORD,
    });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(600);
    expect(limited.json()).toMatchObject({ code: 'TOO_MANY_LOGIN_ATTEMPTS' });
    // Another account from the same IP is not affected by this account's limit.
    const other = await createUser(app);
    expect(
      (await postToken(app, { grant_type: 'password', username: other.email, password: PASSWORD }))
        .statusCode,
    ).toBe(200);
    clock.advance(601_000);
    expect(
      (await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD })).statusCode,
    ).toBe(200);
  });

  it('counts attempts before checking the password, so a parallel burst cannot slip past', async () => {
    app = await buildTestServer({ loginMaxFailuresPerAccount: 5 });
    const user = await createUser(app);
    const burst = await Promise.all([
      ...Array.from({ length: 19 }, () =>
        postToken(app, { grant_type: 'password', username: user.email, password: 'wrong password!' }),
      ),
      postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD }),
    ]);
    const codes = burst.map((r) => r.statusCode);
    // At most five attempts reach the password check; the rest are refused unchecked.
    expect(codes.filter((c) => c !== 429).length).toBeLessThanOrEqual(5);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(15);
  });

  it('limits guesses at the current password on PATCH /users/me', async () => {
    app = await buildTestServer({ loginMaxFailuresPerAccount: 3 });
    const user = await createUser(app);
    const { access_token } = await login(app, user.email);
    const change = (current: string) =>
      app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(access_token),
        payload: { password: 'a brand new secret', current_password: current },
      });
    for (let i = 0; i < 3; i++)
      expect((await change('not the password')).json().code).toBe('INVALID_CURRENT_PASSWORD');
    const limited = await change(PASSWORD);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('TOO_MANY_LOGIN_ATTEMPTS');
  });

  it('limits a client IP across accounts', async () => {
    app = await buildTestServer({ loginMaxFailuresPerIp: 2, loginMaxFailuresPerAccount: 100 });
    await postToken(app, { grant_type: 'password', username: 'a@example.com', password: 'wrong password!' });
    await postToken(app, { grant_type: 'password', username: 'b@example.com', password: 'wrong password!' });
    const limited = await postToken(app, {
      grant_type: 'password',
      username: 'c@example.com',
      password: 'wrong password!',
    });
    expect(limited.statusCode).toBe(429);
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY is set', async () => {
    app = await buildTestServer({ loginMaxFailuresPerIp: 2, loginMaxFailuresPerAccount: 100 });
    for (const ip of ['10.0.0.1', '10.0.0.2']) {
      await postToken(
        app,
        { grant_type: 'password', username: `${ip}@example.com`, password: 'wrong password!' },
        { 'x-forwarded-for': ip },
      );
    }
    // Spoofed addresses did not buy fresh budgets: the real peer is limited.
    const limited = await postToken(
      app,
      { grant_type: 'password', username: 'z@example.com', password: 'x-wrong-pass' },
      { 'x-forwarded-for': '10.0.0.3' },
    );
    expect(limited.statusCode).toBe(429);
    await app.close();

    app = await buildTestServer({
      loginMaxFailuresPerIp: 2,
      loginMaxFailuresPerAccount: 100,
      trustProxy: true,
    });
    for (const ip of ['10.0.0.1', '10.0.0.1']) {
      await postToken(
        app,
        { grant_type: 'password', username: 'p@example.com', password: 'wrong password!' },
        { 'x-forwarded-for': ip },
      );
    }
    const otherClient = await postToken(
      app,
      { grant_type: 'password', username: 'q@example.com', password: 'wrong password!' },
      { 'x-forwarded-for': '10.0.0.2' },
    );
    expect(otherClient.statusCode).toBe(400);
    const sameClient = await postToken(
      app,
      { grant_type: 'password', username: 'q@example.com', password: 'wrong password!' },
      { 'x-forwarded-for': '10.0.0.1' },
    );
    expect(sameClient.statusCode).toBe(429);
  });
});
