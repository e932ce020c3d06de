import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';

describe('error responses', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ bodyLimit: 2048 });
  });
  afterAll(async () => app.close());

  const expectProblem = (
    response: { statusCode: number; headers: Record<string, unknown>; body: string },
    status: number,
    code: string,
  ) => {
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = JSON.parse(response.body);
    expect(body).toMatchObject({
      type: 'about:blank',
      status,
      code,
      title: expect.any(String),
      detail: expect.any(String),
    });
    expect(response.body).not.toMatch(/\bat .+\.(ts|js):\d+/);
  };

  it('answers malformed JSON with 400 INVALID_JSON', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": "a@example.com", ',
    });
    expectProblem(response, 400, 'INVALID_JSON');
  });

  it('enforces the body size limit with 413', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(5000) }),
    });
    expectProblem(response, 413, 'BODY_TOO_LARGE');
  });

  it('answers unknown routes with a 404 problem', async () => {
    expectProblem(await app.inject({ method: 'GET', url: '/nope?x=1' }), 404, 'NOT_FOUND');
  });

  it("answers a malformed URL with a problem, not Fastify's default body", async () => {
    expectProblem(await app.inject({ method: 'GET', url: '/users/%E0%A4%A' }), 400, 'BAD_REQUEST');
  });

  it('answers unsupported media types with 415', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'text/csv' },
      payload: 'a,b',
    });
    expectProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a body shorter than its Content-Length with 400, not 415', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'application/json', 'content-length': '100' },
      payload: '{}',
    });
    expectProblem(response, 400, 'BAD_REQUEST');
  });

  it('never leaks internals for unexpected errors', async () => {
    const broken = await buildTestServer();
    broken.get('/boom', async () => {
      throw new Error('secret internal detail at /srv/app.ts:12');
    });
    const response = await broken.inject({ method: 'GET', url: '/boom' });
    expectProblem(response, 500, 'INTERNAL_ERROR');
    expect(response.body).not.toContain('secret internal detail');
    await broken.close();
  });
});
