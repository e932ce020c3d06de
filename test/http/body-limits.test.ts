import { connect } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OAUTH_ROUTES } from '../../src/http/error-handler.js';
import { buildTestServer } from '../../src/testing.js';
import { listenOnLoopback } from '../support/listen.js';

const BODY_LIMIT = 4096;

/** Every operation of the OpenAPI document that may carry a body, as Fastify routes it. */
async function bodyRoutes(
  app: FastifyInstance,
): Promise<{ method: string; url: string; path: string; types: string[] }[]> {
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>>;
  };
  const routes = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
      // Any value routes the request: a parameter is checked after the body is read.
      const url = path.replace(/\{[^}]+\}/g, 'ABCDEF');
      const types = Object.keys(operation.requestBody?.content ?? {});
      routes.push({ method: method.toUpperCase(), url, path, types });
    }
  }
  return routes;
}

describe('request body limits', () => {
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    app = await buildTestServer({ bodyLimit: BODY_LIMIT });
    base = await listenOnLoopback(app);
  });
  afterAll(async () => app.close());

  const expectTooLarge = (
    path: string,
    response: { statusCode: number; headers: Record<string, unknown>; body: string },
    refusedType = false,
  ) => {
    const where = `${path}: ${response.statusCode} ${response.body.slice(0, 200)}`;
    if (refusedType) {
      // A JSON route refuses another type before reading a byte of the body (validation.ts).
      expect(response.statusCode, where).toBe(415);
      expect(JSON.parse(response.body), where).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
      return;
    }
    if (OAUTH_ROUTES.has(path)) {
      // RFC 6749 §5.2 has no "too large": invalid_request, with our code.
      expect(response.statusCode, where).toBe(400);
      expect(JSON.parse(response.body), where).toMatchObject({
        error: 'invalid_request',
        code: 'BODY_TOO_LARGE',
      });
      return;
    }
    expect(response.statusCode, where).toBe(413);
    expect(response.headers['content-type'], where).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(response.body), where).toMatchObject({ status: 413, code: 'BODY_TOO_LARGE' });
  };

  it('every route that takes a body answers one over BODY_LIMIT with 413 (or 415 for a type it does not take), unread', async () => {
    const routes = await bodyRoutes(app);
    // The document lists the JSON and form routes of the core and both apps.
    expect(routes.length).toBeGreaterThan(40);
    const json = JSON.stringify({ text: 'x'.repeat(BODY_LIMIT) });
    const form = `text=${'x'.repeat(BODY_LIMIT)}`;
    for (const { method, url, path, types } of routes) {
      for (const [type, payload] of [
        ['application/json', json],
        ['application/x-www-form-urlencoded', form],
      ] as const) {
        // A JSON route refuses another type first (form routes read their body and refuse it then).
        // The form parser is the plugin's own (red-team 2026-12o O1): the apps' routes, registered
        // beside it as an embedder's are, have none, so a bodyless one refuses a form unread too.
        const refusedType =
          !types.includes(type) &&
          (types.includes('application/json') ||
            (type === 'application/x-www-form-urlencoded' && /^\/(rooms|clothes)(\/|$)/.test(path)));
        // Declared by Content-Length: refused before a byte of the body is read.
        expectTooLarge(
          path,
          await app.inject({ method: method as 'POST', url, headers: { 'content-type': type }, payload }),
          refusedType,
        );
        // Chunked, with no length: refused once the bytes received pass the limit.
        expectTooLarge(
          path,
          await app.inject({
            method: method as 'POST',
            url,
            headers: { 'content-type': type },
            payload: Readable.from([payload.slice(0, 2000), payload.slice(2000)]),
          }),
          refusedType,
        );
      }
    }
  });

  it('answers a body declared far over the limit at once, without waiting for it', async () => {
    const started = Date.now();
    // By hand: HTTP clients refuse to send a body shorter than the length they declare.
    const socket = connect(Number(new URL(base).port), '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    const answered = new Promise<void>((resolve) => {
      socket.on('data', () => {
        if (received.includes('\r\n\r\n{') && received.endsWith('}')) resolve();
      });
      socket.on('close', () => resolve());
    });
    socket.write(
      `POST /rooms HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${100 * 1024 * 1024}\r\n\r\n{`,
    );
    await answered;
    socket.destroy();
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    expect(received).toMatch(/content-type: application\/problem\+json/i);
    expect(received).toContain('"code":"BODY_TOO_LARGE"');
    // Answered as soon as the headers were read, not after a timeout.
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
