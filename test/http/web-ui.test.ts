import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';

describe('web UI files', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => app.close());

  it('are read once and sent from memory with a strong ETag (as the docs are, red-team 2026-12l N2)', async () => {
    for (const [url, type] of [
      ['/', /^text\/html/],
      ['/index.html', /^text\/html/],
      ['/assets/main.js', /javascript/],
    ] as const) {
      const first = await app.inject({ url });
      expect(first.statusCode, url).toBe(200);
      expect(String(first.headers['content-type'])).toMatch(type);
      const etag = String(first.headers.etag);
      expect(etag).toMatch(/^"[\w-]{27}"$/);
      const second = await app.inject({ url: `${url}?v=2` });
      expect(second.headers.etag).toBe(etag);
      expect(second.rawPayload.equals(first.rawPayload)).toBe(true);
      const revalidated = await app.inject({ url, headers: { 'if-none-match': etag } });
      expect(revalidated.statusCode).toBe(304);
      // RFC 9110 §15.4.5: validators and caching, not the representation's Content-Type.
      expect(revalidated.headers['content-type']).toBeUndefined();
      // §13.1.2: If-None-Match compares weakly (a proxy that re-encodes weakens the tag).
      expect((await app.inject({ url, headers: { 'if-none-match': `W/${etag}` } })).statusCode).toBe(304);
      // Not advertised, since not answered: If-Modified-Since and Range (standards audit 2026-12-05).
      expect([first.headers['last-modified'], first.headers['accept-ranges']]).toEqual([
        undefined,
        undefined,
      ]);
      // The outer app's security headers on every one.
      expect(first.headers['content-security-policy']).toContain("script-src 'self'");
    }
    // A file that is not there: a 404 every time, never kept.
    for (let i = 0; i < 2; i++) expect((await app.inject({ url: '/assets/nope.js' })).statusCode).toBe(404);
  });
});
