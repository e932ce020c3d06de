import type { FastifyInstance } from 'fastify';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, PASSWORD, postToken } from '../support/accounts.js';

describe('POST /token', () => {
  let app: FastifyInstance;
  let email: string;
  let userId: string;
  beforeAll(async () => {
    app = await buildTestServer({ loginMaxFailuresPerAccount: 1000, loginMaxFailuresPerIp: 1000 });
    const user = await createUser(app, { email: 'Token.User@Example.com' });
    email = user.email;
    userId = user.id;
  });
  afterAll(async () => app.close());

  const expectOAuthError = (response: Awaited<ReturnType<typeof postToken>>, error: string) => {
    expect(response.statusCode).toBe(400);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual({ error, error_description: expect.any(String) });
    // RFC 6749 §5.2: error_description is printable ASCII without '"' and '\\'.
    expect(response.json().error_description).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]*$/);
  };

  it('issues an at+jwt access token and a refresh token with no-store', async () => {
    const response = await postToken(app, {
      grant_type: 'password',
      username: 'token.user@EXAMPLE.com',
      password: PASSWORD,
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^ghr_[A-Za-z0-9_-]{86}$/),
      scope: 'me clothes:read rooms:host',
      device_token: expect.stringMatching(/^[A-Za-z0-9_-]{98}$/),
    });
    expect(decodeProtectedHeader(body.access_token)).toMatchObject({
      alg: 'HS256',
      typ: 'at+jwt',
      kid: expect.any(String),
    });
    const claims = decodeJwt(body.access_token);
    expect(claims).toMatchObject({
      sub: userId,
      iss: 'http://localhost:8000',
      client_id: 'gatehouse',
      aud: 'gatehouse-api',
      scope: 'me clothes:read rooms:host',
      sid: expect.any(String),
      jti: expect.any(String),
    });
    expect(typeof claims.sub).toBe('string');
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(900);
    const session = await gatehouseCore(app.gatehouse).sessionStore.findSession(String(claims.sid));
    expect(session).toMatchObject({ userId, transport: 'bearer' });
  });

  it('gives identical invalid_grant bodies for a wrong password and an unknown email', async () => {
    const wrong = await postToken(app, {
      grant_type: 'password',
      username: email,
      password: 'wrong password!',
    });
    const unknown = await postToken(app, {
      grant_type: 'password',
      username: 'nobody@example.com',
      password: 'wrong password!',
    });
    expectOAuthError(wrong, 'invalid_grant');
    expect(unknown.body).toBe(wrong.body);
    expect(unknown.statusCode).toBe(wrong.statusCode);
  });

  it.each([
    [{ grant_type: 'password', password: PASSWORD }, 'invalid_request'],
    [{ grant_type: 'password', username: 'a@example.com' }, 'invalid_request'],
    [{ username: 'a@example.com', password: PASSWORD }, 'invalid_request'],
    [
      { grant_type: 'password', username: ['a@example.com', 'b@example.com'], password: PASSWORD },
      'invalid_request',
    ],
    [
      { grant_type: ['password', 'password'], username: 'a@example.com', password: PASSWORD },
      'invalid_request',
    ],
    [{ grant_type: 'urn:ietf:params:oauth:grant-type:device_code' }, 'unsupported_grant_type'],
    // The client's own grant type is echoed in the description, in the RFC's characters only.
    [{ grant_type: 'é"\\x’' }, 'unsupported_grant_type'],
    // Codes are only ever issued to registered clients (GET /authorize).
    [{ grant_type: 'authorization_code', code: 'x' }, 'unauthorized_client'],
    [{ grant_type: 'refresh_token' }, 'invalid_request'],
  ])('answers %o with %s', async (params, error) => {
    expectOAuthError(await postToken(app, params), error);
  });

  it('refuses JSON bodies with invalid_request', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/token',
      payload: { grant_type: 'password', username: email, password: PASSWORD },
    });
    expectOAuthError(response, 'invalid_request');
  });

  // Issue 11: every /token error, including those Fastify raises before the handler, carries
  // `error` so OAuth clients never mistake it for a token response.
  it.each([
    [
      'a multipart body (wrong content type)',
      { 'content-type': 'multipart/form-data; boundary=x' },
      '--x--',
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['malformed JSON', { 'content-type': 'application/json' }, '{"grant_type":', 'INVALID_JSON'],
    [
      'a body over the limit',
      { 'content-type': 'application/x-www-form-urlencoded' },
      `grant_type=password&password=${'x'.repeat(70_000)}`,
      'BODY_TOO_LARGE',
    ],
  ])('answers %s in RFC 6749 shape with our code', async (_name, headers, payload, code) => {
    const response = await app.inject({ method: 'POST', url: '/token', headers, payload });
    expect(response.statusCode).toBe(400);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual({
      error: 'invalid_request',
      error_description: expect.any(String),
      code,
    });
  });

  it('answers an unknown or missing grant type in RFC 6749 shape', async () => {
    expectOAuthError(await postToken(app, { grant_type: 'implicit' }), 'unsupported_grant_type');
    expectOAuthError(await postToken(app, { username: email, password: PASSWORD }), 'invalid_request');
    expectOAuthError(await postToken(app, { grant_type: ['password', 'password'] }), 'invalid_request');
  });

  it('grants only the scopes the role allows', async () => {
    const narrow = await postToken(app, {
      grant_type: 'password',
      username: email,
      password: PASSWORD,
      scope: 'me',
    });
    expect(narrow.json().scope).toBe('me');
    expectOAuthError(
      await postToken(app, {
        grant_type: 'password',
        username: email,
        password: PASSWORD,
        scope: 'me users:write',
      }),
      'invalid_scope',
    );
    expectOAuthError(
      await postToken(app, { grant_type: 'password', username: email, password: PASSWORD, scope: 'made:up' }),
      'invalid_scope',
    );
  });

  it('refuses a refresh that widens the scope before minting or spending anything', async () => {
    // Regression: refresh used to spend the token and store a new pair, then check the scope and
    // revoke the session, so a client asking for too much lost its session.
    const narrow = await postToken(app, {
      grant_type: 'password',
      username: email,
      password: PASSWORD,
      scope: 'me',
    });
    const { refresh_token } = narrow.json();
    expectOAuthError(
      await postToken(app, { grant_type: 'refresh_token', refresh_token, scope: 'me clothes:read' }),
      'invalid_scope',
    );
    const { sessionId } = (await gatehouseCore(app.gatehouse).sessions.verifyAccessToken(
      narrow.json().access_token,
    )) as {
      sessionId: string;
    };
    // Nothing was stored for the refused request: the session still has only the one token, unspent.
    const rows = await gatehouseCore(app.gatehouse)
      .database.db.selectFrom('refresh_tokens')
      .select(['spent_at'])
      .where('session_id', '=', sessionId)
      .execute();
    expect(rows).toEqual([{ spent_at: null }]);
    const ok = await postToken(app, { grant_type: 'refresh_token', refresh_token, scope: 'me' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().scope).toBe('me');
  });

  it('says a disabled account is disabled only once the password was right', async () => {
    const user = await createUser(app);
    await gatehouseCore(app.gatehouse).accounts.applyUserChange(user.id, { isActive: false });
    const wrong = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: 'wrong password!',
    });
    expect(wrong.json().error_description).not.toMatch(/disabled/);
    const right = await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD });
    expectOAuthError(right, 'invalid_grant');
    expect(right.json().error_description).toMatch(/disabled/);
  });

  it('records logins in the audit log without secrets', async () => {
    // Its own logins, so the test does not depend on the ones earlier tests happened to make.
    const user = await createUser(app);
    expect(
      (await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD })).statusCode,
    ).toBe(200);
    expectOAuthError(
      await postToken(app, { grant_type: 'password', username: user.email, password: 'wrong password!' }),
      'invalid_grant',
    );
    const { items } = await gatehouseCore(app.gatehouse).audit.list({ limit: 100, offset: 0 });
    const events = items.filter((item) => item.targetId === user.id).map((item) => item.event);
    expect(events).toContain('login_succeeded');
    expect(JSON.stringify(items)).not.toContain(PASSWORD);
    // A wrong password is tallied per account and hour, not written as a row (issue 8).
    const tallies = await gatehouseCore(app.gatehouse).auditRetention.listLoginFailures({
      subjectId: user.id,
      limit: 10,
    });
    expect(tallies.map((tally) => tally.failures)).toEqual([1]);
  });
});
