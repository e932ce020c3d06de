import fastifyCors from '@fastify/cors';
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPOSED_HEADERS, installCors } from '../../src/http/cors.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createSoftAuthenticator } from '../support/soft-authenticator.js';

const ALLOWED = 'https://app.example.com';
/** A first-party front end on another origin (CORS_CREDENTIALED_ORIGINS). */
const FIRST_PARTY = 'https://ui.example.com';
const OPTIONS = {
  origins: [],
  credentialedOrigins: [ALLOWED, 'https://admin.example.com'],
  methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
  allowedHeaders: ['Authorization', 'Content-Type', 'X-CSRF-Token', 'Last-Event-ID'],
  maxAgeSeconds: 600,
};

/** Status, every header but `date` (in order) and body: what a client can observe. */
function observed(response: LightMyRequestResponse) {
  return {
    status: response.statusCode,
    headers: Object.entries(response.headers).filter(([name]) => name !== 'date'),
    body: response.body,
  };
}

/** A bare app with `GET /x` and `GET /v` (which sets its own Vary) behind the given CORS installer. */
async function appWith(install: (app: FastifyInstance) => Promise<void> | void): Promise<FastifyInstance> {
  const app = Fastify();
  await install(app);
  app.get('/x', async () => ({ ok: true }));
  app.get('/v', async (_request, reply) => reply.header('vary', 'Accept').send({ ok: true }));
  app.post('/x', async () => ({ posted: true }));
  await app.ready();
  return app;
}

// `method: null` sends no Access-Control-Request-Method (`undefined` would take the default).
const preflight = (origin: string | undefined, url = '/x', method: string | null = 'PATCH') => ({
  method: 'OPTIONS' as const,
  url,
  headers: {
    ...(origin === undefined ? {} : { origin }),
    ...(method === null ? {} : { 'access-control-request-method': method }),
  },
});

const CASES: [string, InjectOptions][] = [
  ['GET without Origin', { method: 'GET', url: '/x' }],
  ['GET from the allowed origin', { method: 'GET', url: '/x', headers: { origin: ALLOWED } }],
  [
    'GET from the second allowed origin',
    { method: 'GET', url: '/x', headers: { origin: 'https://admin.example.com' } },
  ],
  ['POST from the allowed origin', { method: 'POST', url: '/x', headers: { origin: ALLOWED } }],
  ['GET of a route with its own Vary', { method: 'GET', url: '/v', headers: { origin: ALLOWED } }],
  ['GET of an unknown route', { method: 'GET', url: '/nowhere', headers: { origin: ALLOWED } }],
  ...[
    'https://evil.example',
    'null',
    'https://app.example.com.evil.example',
    'http://app.example.com',
    'https://APP.example.com',
    '',
  ].map((origin): [string, InjectOptions] => [
    `GET from ${JSON.stringify(origin)}`,
    { method: 'GET', url: '/x', headers: { origin } },
  ]),
  ['preflight from the allowed origin', preflight(ALLOWED)],
  ['preflight for an unknown route', preflight(ALLOWED, '/nowhere')],
  ['preflight from another origin', preflight('https://evil.example')],
  ['preflight from "null"', preflight('null')],
  ['OPTIONS without Origin', preflight(undefined)],
  ['OPTIONS without Origin or method', preflight(undefined, '/x', null)],
];

describe.each([
  { list: 'credentialedOrigins', credentials: true, options: OPTIONS },
  {
    list: 'origins',
    credentials: false,
    options: { ...OPTIONS, origins: OPTIONS.credentialedOrigins, credentialedOrigins: [] },
  },
])('CORS (installCors, $list)', ({ credentials, options }) => {
  let ours: FastifyInstance;
  let library: FastifyInstance;
  beforeAll(async () => {
    ours = await appWith((app) => installCors(app, options));
    // @fastify/cors with the options the server passed it before installCors replaced it.
    library = await appWith(async (app) => {
      const allowed = new Set([...options.origins, ...options.credentialedOrigins]);
      await app.register(fastifyCors, {
        origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
        credentials,
        methods: OPTIONS.methods,
        allowedHeaders: OPTIONS.allowedHeaders,
        maxAge: OPTIONS.maxAgeSeconds,
        exposedHeaders: EXPOSED_HEADERS,
      });
    });
  });
  afterAll(async () => {
    await Promise.all([ours.close(), library.close()]);
  });

  it.each(CASES)('answers %s byte for byte as @fastify/cors did', async (_name, request) => {
    expect(observed(await ours.inject(request))).toEqual(observed(await library.inject(request)));
  });

  it('refuses a preflight without Access-Control-Request-Method with 400, as @fastify/cors did', async () => {
    const request = preflight(ALLOWED, '/x', null);
    const [answer, before] = await Promise.all([ours.inject(request), library.inject(request)]);
    expect(answer.statusCode).toBe(400);
    expect(before.statusCode).toBe(400);
    // The CORS headers are the same; the body is problem+json with a stable code, not text/plain.
    for (const name of ['access-control-allow-origin', 'access-control-allow-credentials', 'vary'])
      expect(answer.headers[name]).toBe(before.headers[name]);
    expect(before.headers['content-type']).toMatch(/^text\/plain/);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.json()).toMatchObject({ status: 400, code: 'CORS_PREFLIGHT_INVALID' });
    expect(answer.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('echoes only an allowed origin, with credentials for the credentialed list only, and answers its preflight with 204', async () => {
    const simple = await ours.inject({ method: 'GET', url: '/x', headers: { origin: ALLOWED } });
    expect(simple.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(simple.headers['access-control-allow-credentials']).toBe(credentials ? 'true' : undefined);
    expect(simple.headers.vary).toBe('Origin');
    const answer = await ours.inject(preflight(ALLOWED));
    expect(answer.statusCode).toBe(204);
    expect(answer.headers['access-control-allow-methods']).toBe('GET, HEAD, POST, PATCH, DELETE');
    expect(answer.headers['access-control-max-age']).toBe('600');
    const refused = await ours.inject(preflight('https://evil.example'));
    expect(refused.statusCode).toBe(404);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('is what the reference server sends: preflights answered before the guard, the path’s own OPTIONS answer otherwise', async () => {
    const server = await buildTestServer({ corsOrigins: [ALLOWED] }, { webUi: false });
    try {
      const answer = await server.inject(preflight(ALLOWED, '/users/me'));
      expect(answer.statusCode).toBe(204);
      expect(answer.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(answer.headers['access-control-allow-headers']).toBe(
        'Authorization, Content-Type, X-CSRF-Token, Last-Event-ID',
      );
      // The security headers are there too (both hooks run on every answer).
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      // Another origin's preflight gets no CORS headers, so the browser refuses it; the path's
      // own OPTIONS answer (RFC 9110 §9.3.7) names its methods.
      const refused = await server.inject(preflight('https://evil.example', '/users/me'));
      expect(refused.statusCode).toBe(204);
      expect(refused.headers.allow).toBe('GET, HEAD, DELETE, PATCH, OPTIONS');
      expect(refused.headers['access-control-allow-origin']).toBeUndefined();
      expect(refused.headers['access-control-allow-methods']).toBeUndefined();
      expect((await server.inject(preflight('https://evil.example', '/no/such'))).statusCode).toBe(404);
      // Not a preflight (no Access-Control-Request-Method): problem+json with a stable code, never
      // @fastify/cors's text/plain, and with the CORS and security headers still on it.
      const invalid = await server.inject(preflight(ALLOWED, '/users/me', null));
      expect(invalid.statusCode).toBe(400);
      expect(invalid.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(invalid.json()).toMatchObject({ status: 400, code: 'CORS_PREFLIGHT_INVALID' });
      expect(invalid.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(invalid.headers['access-control-allow-methods']).toBeUndefined();
      expect(invalid.headers['x-content-type-options']).toBe('nosniff');
      const anonymous = await server.inject({
        method: 'GET',
        url: '/users/me',
        headers: { origin: ALLOWED },
      });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.headers['access-control-allow-origin']).toBe(ALLOWED);
      // CORS_ORIGINS is for apps with bearer tokens: never the person's cookies (J6).
      expect(anonymous.headers['access-control-allow-credentials']).toBeUndefined();
      expect(anonymous.headers.vary).toMatch(/Origin/);
      // Fetch §3.2.4: the app's script may read the challenge (RFC 6750, RFC 9470 step-up),
      // Retry-After and Location, which are not CORS-safelisted response headers.
      expect(anonymous.headers['access-control-expose-headers']).toBe(
        'WWW-Authenticate, Retry-After, Location',
      );
      const other = await server.inject({
        method: 'GET',
        url: '/users/me',
        headers: { origin: 'https://evil.example' },
      });
      expect(other.headers['access-control-expose-headers']).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});

describe('CORS_ORIGINS and the first-party cookie session (red-team 2026-12e)', () => {
  // J6: the README tells operators to list an OAuth SPA's origin in CORS_ORIGINS for its calls to
  // /token and /userinfo (bearer calls, no cookie). The list was credentialed and the CSRF guard's
  // Origin allowlist too, so a listed origin on the same site (app.example.com beside
  // auth.example.com: the Lax and Strict cookies go along) read /auth/csrf and acted as the web UI
  // itself, past the consent page and every `firstParty` guard.
  let server: FastifyInstance;
  beforeAll(async () => {
    server = await buildTestServer({
      publicUrl: 'https://auth.example.com',
      corsOrigins: [ALLOWED],
      corsCredentialedOrigins: [FIRST_PARTY],
    });
  });
  afterAll(async () => server.close());

  /** A signed-in browser, and the headers of a same-site page of `origin` calling with its cookies. */
  const signedInFrom = async (origin: string) => {
    const user = await createUser(server, { verified: true });
    const browser = new Browser(server);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    // The page's fetch(…, { credentials: 'include' }).
    const fromPage = { origin, 'sec-fetch-site': 'same-site' };
    const csrf = await browser.request('GET', '/auth/csrf', { headers: fromPage });
    // A fetch with credentials is readable only with both headers (Fetch §3.2.5, CORS check).
    const readable =
      csrf.headers['access-control-allow-origin'] === origin &&
      csrf.headers['access-control-allow-credentials'] === 'true';
    // The token is taken from the answer as if it were readable: the Origin check alone must stop it.
    const headers = { ...fromPage, 'x-csrf-token': String(csrf.json().csrf_token) };
    return { browser, readable, headers };
  };

  it('J6: an OAuth SPA’s origin in CORS_ORIGINS cannot use the person’s cookie session', async () => {
    const { browser, readable, headers } = await signedInFrom(ALLOWED);
    const enrol = await browser.request('POST', '/users/me/mfa/totp', { headers });
    expect({ csrfTokenReadable: readable, totpEnrolment: enrol.statusCode }).toEqual({
      csrfTokenReadable: false,
      totpEnrolment: 403,
    });
  });

  // J6, to the end: the app's page registers a passkey of its own (a software authenticator
  // writes any clientDataJSON origin it likes), then signs in as the person from anywhere (H2's
  // takeover, back through CORS).
  it('J6: an OAuth SPA’s origin in CORS_ORIGINS cannot register a passkey on the person’s account', async () => {
    const { browser, headers } = await signedInFrom(ALLOWED);
    const started = await browser.request('POST', '/users/me/passkeys/options', { headers });
    const appAuthenticator = createSoftAuthenticator('https://auth.example.com');
    const registered =
      started.statusCode === 200
        ? await browser.request('POST', '/users/me/passkeys', {
            headers,
            payload: {
              passkey_token: started.json().passkey_token,
              credential: appAuthenticator.register(started.json().options),
              name: 'app',
            },
          })
        : started;
    expect({ status: registered.statusCode, code: registered.json().code }).toEqual({
      status: 403,
      code: 'CROSS_SITE_REQUEST',
    });
  });

  it('a CORS_CREDENTIALED_ORIGINS origin acts as the web UI: what the operator opted in to', async () => {
    const { browser, readable, headers } = await signedInFrom(FIRST_PARTY);
    const enrol = await browser.request('POST', '/users/me/mfa/totp', { headers });
    expect({ csrfTokenReadable: readable, totpEnrolment: enrol.statusCode }).toEqual({
      csrfTokenReadable: true,
      totpEnrolment: 201,
    });
  });
});
