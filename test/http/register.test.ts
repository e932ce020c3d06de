import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { PASSWORD, signIn } from '../support/accounts.js';

describe('POST /auth/register', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ registrationsPerHour: 1000 });
  });
  afterAll(async () => app.close());

  const register = (payload: unknown) =>
    app.inject({ method: 'POST', url: '/auth/register', payload: payload as object });

  it('creates a user and returns its public shape, never a hash', async () => {
    const response = await register({ email: ' Alice@Example.COM ', password: PASSWORD, full_name: 'Alice' });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body).toEqual({
      id: expect.any(String),
      email: 'Alice@Example.COM',
      full_name: 'Alice',
      role: 'user',
      is_active: true,
      email_verified: false,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(response.body).not.toMatch(/argon2|password/i);
    // The new account's id and address are never kept by a cache (red-team 2026-12h C3).
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('names the new account in Location: its resource, which admins read (RFC 9110 §15.3.2)', async () => {
    const response = await register({ email: 'located@example.com', password: PASSWORD });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(response.headers.location).toBe(`/users/${body.id}`);
    const admin = await signIn(app, 'admin');
    const shown = await app.inject({
      method: 'GET',
      url: String(response.headers.location),
      headers: admin.headers,
    });
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toEqual(body);
  });

  it('treats emails case-insensitively: a second spelling is EMAIL_TAKEN', async () => {
    // Its own address, so the outcome does not depend on which test ran first.
    expect((await register({ email: ' Bob@Example.COM ', password: PASSWORD })).statusCode).toBe(201);
    const response = await register({ email: 'bob@example.com', password: PASSWORD });
    expect(response.statusCode).toBe(409);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ status: 409, code: 'EMAIL_TAKEN' });
  });

  it('writes exactly one row under 50 concurrent sign-ups for one email', async () => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        register({ email: i % 2 === 0 ? 'race@example.com' : 'RACE@example.com', password: PASSWORD }),
      ),
    );
    const codes = responses.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    expect(codes.filter((c) => c === 409)).toHaveLength(49);
    const { total } = await gatehouseCore(app.gatehouse).users.listUsers({
      limit: 100,
      offset: 0,
      emailPrefix: 'race@',
    });
    expect(total).toBe(1);
  });

  it.each(['role', 'is_active', 'id', 'nickname'])(
    'rejects a body that sets %s, naming it, and stores nothing',
    async (field) => {
      const email = `${field}@example.com`;
      const response = await register({
        email,
        password: PASSWORD,
        [field]: field === 'is_active' ? false : 'admin',
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
      expect(await gatehouseCore(app.gatehouse).users.findUserByEmailKey(email)).toBeUndefined();
    },
  );

  it('rejects weak passwords with the reason', async () => {
    const common = await register({ email: 'weak1@example.com', password: 'password12345678' });
    expect(common.statusCode).toBe(400);
    expect(common.json()).toMatchObject({ code: 'WEAK_PASSWORD', detail: expect.stringContaining('common') });
    // Issue 8: all of these were accepted (the minimum was 8).
    for (const password of ['Ab1!', 'password123', 'Passw0rd!', 'fourteen chars']) {
      const short = await register({ email: 'weak2@example.com', password });
      expect(short.json()).toMatchObject({
        code: 'WEAK_PASSWORD',
        detail: expect.stringContaining('at least 15'),
        errors: [{ field: 'password' }],
      });
    }
    for (const [email, password] of [
      ['grace.hopper@example.com', 'grace.hopper@example.com'],
      ['grace.hopper@example.com', 'GraceHopper1906!!'],
      ['weak3@example.com', 'Gatehouse12345678'],
    ] as const) {
      const context = await register({ email, password });
      expect(context.json(), password).toMatchObject({
        code: 'WEAK_PASSWORD',
        errors: [{ field: 'password' }],
      });
    }
    expect(
      await gatehouseCore(app.gatehouse).users.findUserByEmailKey('grace.hopper@example.com'),
    ).toBeUndefined();
  });

  it('does not coerce JSON types, and reports one error per field', async () => {
    const response = await register({ email: 'typed@example.com', password: PASSWORD, full_name: 5 });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ field: 'full_name', message: expect.any(String) }]);
  });

  it('rejects invalid emails and missing fields by name', async () => {
    expect((await register({ email: 'not-an-email', password: PASSWORD })).json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ field: 'email' }],
    });
    expect((await register({ email: 'x@example.com' })).json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ field: 'password' }],
    });
  });
});

describe('registration limits', () => {
  it('limits sign-ups per client IP with Retry-After', async () => {
    const app = await buildTestServer({ registrationsPerHour: 2 });
    const register = (email: string, remoteAddress = '203.0.113.9') =>
      app.inject({
        method: 'POST',
        url: '/auth/register',
        remoteAddress,
        payload: { email, password: PASSWORD },
      });
    expect((await register('one@example.com')).statusCode).toBe(201);
    expect((await register('one@example.com')).statusCode).toBe(409);
    const limited = await register('three@example.com');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('TOO_MANY_REQUESTS');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await register('four@example.com', '198.51.100.4')).statusCode).toBe(201);
    await app.close();
  });
});

describe('POST /auth/register: the per-address limit', () => {
  it('counts a whole IPv6 /64 as one address: rotating through it does not reset the limit', async () => {
    const app = await buildTestServer({ registrationsPerHour: 2 });
    try {
      const codes: number[] = [];
      for (let i = 1; i <= 3; i++) {
        const response = await app.inject({
          method: 'POST',
          url: '/auth/register',
          remoteAddress: `2001:db8:7:7::${i.toString(16)}`,
          payload: { email: `rotating${i}@example.com`, password: PASSWORD },
        });
        codes.push(response.statusCode);
      }
      expect(codes).toEqual([201, 201, 429]);
      // Another /64 is another client.
      const other = await app.inject({
        method: 'POST',
        url: '/auth/register',
        remoteAddress: '2001:db8:7:8::1',
        payload: { email: 'elsewhere@example.com', password: PASSWORD },
      });
      expect(other.statusCode).toBe(201);
    } finally {
      await app.close();
    }
  });

  it('I8: the /64s of one IPv6 /48 share a ceiling, so one network cannot sign up without end', async () => {
    // Each sign-up is an argon2id hash on the shared lane (logins of every new device wait behind
    // them) and a verification mail to any address: per /64 alone, one /48 gets 65 536 × 20 an hour.
    const app = await buildTestServer({ registrationsPerHour: 1 });
    try {
      const codes: number[] = [];
      for (let subnet = 1; subnet <= 40; subnet += 1) {
        const response = await app.inject({
          method: 'POST',
          url: '/auth/register',
          remoteAddress: `2001:db8:5eed:${subnet.toString(16)}::1`,
          payload: { email: `flood${subnet}@example.com`, password: PASSWORD },
        });
        codes.push(response.statusCode);
      }
      expect(codes.filter((code) => code === 429).length).toBeGreaterThan(20);
    } finally {
      await app.close();
    }
  });

  it("I8: a /64 refused for its own sign-ups spends none of its network's share", async () => {
    const app = await buildTestServer({ registrationsPerHour: 1 });
    try {
      const signUp = (remoteAddress: string, email: string) =>
        app.inject({
          method: 'POST',
          url: '/auth/register',
          remoteAddress,
          payload: { email, password: PASSWORD },
        });
      expect((await signUp('2001:db8:beef:1::1', 'first@example.com')).statusCode).toBe(201);
      // The same /64 again and again: refused by its own allowance, never counted on the /48.
      for (let i = 0; i < 10; i += 1) {
        expect((await signUp('2001:db8:beef:1::2', `again${i}@example.com`)).statusCode).toBe(429);
      }
      // The /48 allows NETWORK_LIMIT_FACTOR (4) in all: three more /64s, then refused.
      const neighbours: number[] = [];
      for (let subnet = 2; subnet <= 5; subnet += 1) {
        neighbours.push((await signUp(`2001:db8:beef:${subnet}::1`, `n${subnet}@example.com`)).statusCode);
      }
      expect(neighbours).toEqual([201, 201, 201, 429]);
      // IPv4 addresses are counted each alone, as before.
      expect((await signUp('192.0.2.7', 'v4a@example.com')).statusCode).toBe(201);
      expect((await signUp('192.0.2.8', 'v4b@example.com')).statusCode).toBe(201);
    } finally {
      await app.close();
    }
  });
});

describe('GET /auth/password-policy', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ registrationsPerHour: 1000, passwordMinLength: 20 });
  });
  afterAll(async () => app.close());

  it('tells the browser the configured lengths, and the register route enforces the same minimum', async () => {
    const response = await app.inject({ method: 'GET', url: '/auth/password-policy' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ min_length: 20, max_length: 1024 });
    expect(response.headers['cache-control']).toBe('public, max-age=300');
    // One code point short of what the endpoint said: refused, with the password as the field.
    const short = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'policy@example.com', password: 'plum velvet harbor x'.slice(0, 19) },
    });
    expect(short.statusCode).toBe(400);
    expect(short.json()).toMatchObject({ code: 'WEAK_PASSWORD' });
    const enough = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'policy@example.com', password: 'plum velvet harbor x' },
    });
    expect(enough.statusCode).toBe(201);
  });
});
