/**
 * Red team, finding F5 (FINDINGS.md): the one API error that is not problem+json. A preflight
 * from an allowed origin without `Access-Control-Request-Method` answers 400 `text/plain`
 * ("Invalid Preflight Request", kept from @fastify/cors). Fails on main.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';

const ALLOWED = 'https://app.example.com';

describe('red team F5: every API error is problem+json', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({ corsOrigins: [ALLOWED] }, { webUi: false });
  });
  afterAll(async () => app.close());

  it('a malformed preflight from an allowed origin', async () => {
    const response = await app.inject({ method: 'OPTIONS', url: '/users/me', headers: { origin: ALLOWED } });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
