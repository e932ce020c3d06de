import fastifyHelmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  computeSecurityHeaders,
  installSecurityHeaders,
  securityHeaderOptions,
} from '../../src/http/security-headers.js';
import { buildTestServer } from '../../src/testing.js';

/** Every header but `date`, in the order the response carries them. */
function headerList(response: LightMyRequestResponse): [string, unknown][] {
  return Object.entries(response.headers).filter(([name]) => name !== 'date');
}

/** A bare app answering `GET /x` with the given security-header installer. */
async function appWith(install: (app: FastifyInstance) => Promise<void> | void): Promise<FastifyInstance> {
  const app = Fastify();
  await install(app);
  app.get('/x', async () => ({ ok: true }));
  return app;
}

describe('precomputed security headers', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it.each([true, false])('are byte for byte what @fastify/helmet sends (hsts %s)', async (hsts) => {
    const helmetApp = await appWith(async (app) => {
      await app.register(fastifyHelmet, securityHeaderOptions(hsts));
    });
    const ourApp = await appWith((app) => installSecurityHeaders(app, hsts));
    apps.push(helmetApp, ourApp);
    const expected = await helmetApp.inject({ method: 'GET', url: '/x' });
    const actual = await ourApp.inject({ method: 'GET', url: '/x' });
    expect(headerList(actual)).toEqual(headerList(expected));
    // Also on answers that never reach a handler.
    const missing = await ourApp.inject({ method: 'GET', url: '/nowhere' });
    const helmetMissing = await helmetApp.inject({ method: 'GET', url: '/nowhere' });
    expect(headerList(missing)).toEqual(headerList(helmetMissing));
  });

  it('freezes the CSP and the header set the server sends', async () => {
    // Today's set, frozen: a helmet upgrade that changes a default shows up here as a diff.
    expect(computeSecurityHeaders(securityHeaderOptions(true))).toEqual([
      [
        'Content-Security-Policy',
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';" +
          "frame-ancestors 'none';img-src 'self' data:;object-src 'none';script-src 'self';" +
          "script-src-attr 'none';style-src 'self' 'unsafe-inline';connect-src 'self'",
      ],
      ['Cross-Origin-Opener-Policy', 'same-origin'],
      ['Cross-Origin-Resource-Policy', 'same-origin'],
      ['Origin-Agent-Cluster', '?1'],
      ['Referrer-Policy', 'no-referrer'],
      ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
      ['X-Content-Type-Options', 'nosniff'],
      ['X-DNS-Prefetch-Control', 'off'],
      ['X-Download-Options', 'noopen'],
      ['X-Frame-Options', 'SAMEORIGIN'],
      ['X-Permitted-Cross-Domain-Policies', 'none'],
      ['X-XSS-Protection', '0'],
    ]);
  });

  it('are what the reference server sends, HSTS only with secure cookies', async () => {
    for (const cookieSecure of [true, false]) {
      const server = await buildTestServer({ cookieSecure }, { webUi: false });
      apps.push(server);
      const response = await server.inject({ method: 'GET', url: '/healthz' });
      for (const [name, value] of computeSecurityHeaders(securityHeaderOptions(cookieSecure))) {
        expect(response.headers[name.toLowerCase()]).toBe(value);
      }
      expect(response.headers['strict-transport-security'] !== undefined).toBe(cookieSecure);
    }
  });
});
