/**
 * Red team, finding F10 (FINDINGS.md): a redirect URI's host is not checked to be a hostname.
 * WHATWG URL accepts `;` in a host, so `https://x.example;frame-ancestors/cb` registers, and the
 * consent page copies its origin into `Content-Security-Policy: form-action 'self' <origin>`, which
 * then reads `… https://x.example;frame-ancestors; frame-ancestors 'none'; …`: the client's
 * registrant writes CSP directives (name-only ones today, as spaces and quotes cannot get through).
 * Fails on main (201).
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { type SignedIn, signIn } from '../support/accounts.js';

describe('red team F10: redirect URI hosts must be host names', () => {
  let app: FastifyInstance;
  let admin: SignedIn;

  beforeAll(async () => {
    app = await buildTestServer();
    admin = await signIn(app, 'admin');
  });
  afterAll(async () => app.close());

  it.each(['https://x.example;frame-ancestors/cb', 'https://x.example,evil/cb'])(
    'refuses %s',
    async (uri) => {
      const response = await app.inject({
        method: 'POST',
        url: '/oauth/clients',
        headers: admin.headers,
        payload: { name: 'Semicolon', redirect_uris: [uri] },
      });
      expect(response.statusCode).toBe(400);
    },
  );
});
