import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { type SignedIn, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { type CreatedRoom, createRoom, type JoinedPlayer, joinAsBot } from '../support/rooms.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Percent-encodes every byte, so the arbitrary can produce NUL, controls and invalid UTF-8. */
function encodeBytes(bytes: Uint8Array): string {
  return [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
}

/**
 * Random path or query values, already URL-encoded: any Unicode text (lone surrogates become
 * U+FFFD in UTF-8, as a browser would send them) or raw bytes.
 */
const encodedValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }).map((text) => encodeBytes(Buffer.from(text, 'utf8'))),
  fc.uint8Array({ maxLength: 80 }).map(encodeBytes),
  fc.constantFrom('%00', 'a%00b', `${randomUUID()}%00`, '%ff', '%c0%80', '%ed%a0%80', '%e2%80%ae'),
);

// Values that route to a different, static route (`/users/me`, `/rooms/:code/players/me`) are
// other endpoints, not bad ids; the empty value routes to the list routes.
const routesElsewhere = (encoded: string) =>
  ['me', 'ME', ''].includes(decodeURIComponentSafe(encoded) ?? 'x');

function decodeURIComponentSafe(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

describe.each(engines)(
  'path and query parameters are validated before any storage call ($name)',
  ({ name }) => {
    let app: FastifyInstance;
    let drop: () => Promise<void> = async () => {};
    let admin: SignedIn;
    let room: CreatedRoom | undefined;
    let player: JoinedPlayer;

    beforeAll(async () => {
      const database = await createTestDatabaseUrl(name);
      drop = database.drop;
      app = await buildTestServer({ databaseUrl: database.url, roomJoinsPerMinute: 100_000 });
      admin = await signIn(app, 'super_admin');
      room = await createRoom(app, admin);
      player = await joinAsBot(app, codeOf(), 'Pat');
    });

    afterAll(async () => {
      await app?.close();
      await drop();
    });

    // Templates are named before `beforeAll` has created the room.
    const codeOf = () => room?.code ?? '{code}';

    const send = (method: Method, url: string, headers: Record<string, string>, payload?: object) =>
      app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });

    const expectFieldError = (response: LightMyRequestResponse, field: string) => {
      expect(response.statusCode, response.body).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
    };

    // Issue 8: every one of these answered 500 on PostgreSQL (NUL in a `text` comparison).
    it.each([
      ['GET', '/clothes/%00', 'id'],
      ['PATCH', '/clothes/%00', 'id'],
      ['DELETE', '/clothes/%00', 'id'],
      ['DELETE', '/users/me/sessions/%00', 'id'],
      ['GET', '/users/%00', 'id'],
      ['PATCH', '/users/%00', 'id'],
      ['DELETE', '/users/%00', 'id'],
      ['GET', '/users?email_prefix=%00', 'email_prefix'],
      ['GET', '/users?email_prefix=a%1Fb', 'email_prefix'],
      ['GET', '/audit?actor_id=%00', 'actor_id'],
      ['GET', '/audit?target_id=%00', 'target_id'],
      ['GET', '/audit?actor_id=not-a-uuid', 'actor_id'],
    ] as const)('%s %s answers 400 naming `%s`', async (method, url, field) => {
      const payload = method === 'PATCH' ? { name: 'Coat' } : undefined;
      const body = url.startsWith('/users/%') && method === 'PATCH' ? { full_name: 'X' } : payload;
      expectFieldError(await send(method, url, admin.headers, body), field);
    });

    // Red-team 2026-12c H1: ±Infinity passed Ajv's bounds after coercion and reached SQL (500 on
    // both engines; on PostgreSQL for any anonymous player through the Dicery cursors).
    it('answers 400 naming the field, never 5xx, to limits, offsets and cursors that parse to ±Infinity', async () => {
      const cases: Array<[string, Record<string, string>, string]> = [
        ['/clothes?offset=1e400', admin.headers, 'offset'],
        ['/clothes?limit=1e400', admin.headers, 'limit'],
        ['/users?offset=1e400', admin.headers, 'offset'],
        ['/audit?limit=Infinity', admin.headers, 'limit'],
        ['/rooms?limit=-Infinity', admin.headers, 'limit'],
        [`/rooms/${codeOf()}/bans?offset=1e400`, admin.headers, 'offset'],
        [`/rooms/${codeOf()}/rolls?before=1e400`, player.headers, 'before'],
        [`/rooms/${codeOf()}/rolls?before=-Infinity`, player.headers, 'before'],
        [`/rooms/${codeOf()}/log?after=1e400`, player.headers, 'after'],
      ];
      for (const [url, headers, field] of cases) expectFieldError(await send('GET', url, headers), field);
    });

    it('DELETE /rooms/{code}/players/%00 answers 400 naming `id`', async () => {
      expectFieldError(await send('DELETE', `/rooms/${codeOf()}/players/%00`, admin.headers), 'id');
    });

    it('answers a malformed room code 400 (`code`) or 404 (member routes check the code first), never 5xx', async () => {
      expectFieldError(await send('POST', '/rooms/%00/join', {}, { player: 'Sam' }), 'code');
      expectFieldError(await send('DELETE', '/rooms/AB%00CDEFG', admin.headers), 'code');
      expectFieldError(await send('DELETE', `/rooms/%00/players/${player.id}`, admin.headers), 'code');
      for (const url of ['/rooms/%00', '/rooms/%00/events', '/rooms/%00/rolls']) {
        const response = await send(url.endsWith('rolls') ? 'POST' : 'GET', url, player.headers, undefined);
        expect(response.statusCode, url).toBe(404);
        expect(response.json()).toMatchObject({ code: 'ROOM_NOT_FOUND' });
      }
    });

    // A leap second (23:59:60) is a valid RFC 3339 date-time, so the schema lets it through, but
    // Date.parse gives NaN for it: PostgreSQL then refused the query (500), SQLite matched nothing.
    it.each(['since', 'until'])(
      'GET /audit?%s= a leap second answers 200 with a page, never 5xx',
      async (field) => {
        for (const value of ['2016-12-31T23:59:60Z', '2017-01-01T00:59:60.5%2B01:00']) {
          const response = await send('GET', `/audit?${field}=${value}`, admin.headers);
          expect(response.statusCode, response.body).toBe(200);
          const page = response.json() as { items: { created_at: string }[] };
          // Entries were written now (after 2017): all match `since`, none match `until`.
          expect(page.items.length > 0).toBe(field === 'since');
        }
      },
    );

    it('still accepts well-formed values: unknown ids are 404, codes in lower case with spaces work', async () => {
      const missing = randomUUID();
      expect((await send('GET', `/clothes/${missing}`, admin.headers)).statusCode).toBe(404);
      expect((await send('GET', `/users/${missing}`, admin.headers)).statusCode).toBe(404);
      expect((await send('DELETE', `/users/me/sessions/${missing}`, admin.headers)).statusCode).toBe(404);
      expect((await send('GET', `/audit?actor_id=${admin.user.id}`, admin.headers)).statusCode).toBe(200);
      expect((await send('GET', '/users?email_prefix=super', admin.headers)).statusCode).toBe(200);
      const snapshot = await send('GET', `/rooms/%20${codeOf().toLowerCase()}%20`, player.headers);
      expect(snapshot.statusCode).toBe(200);
    });

    it('answers 4xx, never 5xx, to NUL in any body text field', async () => {
      const nul = 'a\u0000b';
      const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
      const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' };
      const responses = [
        await send(
          'POST',
          '/auth/register',
          {},
          { email: `x${nul}@example.com`, password: 'correct horse battery' },
        ),
        await app.inject({
          method: 'POST',
          url: '/token',
          headers: formHeaders,
          payload: form({ grant_type: 'password', username: `x${nul}@example.com`, password: nul }),
        }),
        await app.inject({
          method: 'POST',
          url: '/token',
          headers: formHeaders,
          payload: form({ grant_type: 'refresh_token', refresh_token: nul }),
        }),
        await send('PATCH', '/users/me', admin.headers, { full_name: nul }),
        await send('POST', '/clothes', admin.headers, {
          name: nul,
          photo_url: `https://img.example.test/${nul}`,
          size: 'm',
          color: 'red',
        }),
        await send('POST', '/rooms', admin.headers, { name: nul }),
        await send('POST', `/rooms/${codeOf()}/join`, {}, { player: nul, transport: 'bearer' }),
        await send('POST', `/rooms/${codeOf()}/rolls`, player.headers, { notation: nul }),
        await send('POST', `/rooms/${codeOf()}/rolls`, player.headers, { notation: 'd6', label: nul }),
      ];
      for (const response of responses) {
        expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
        expect(response.statusCode, response.body).toBeLessThan(500);
      }
      // A password is hashed, never stored or compared as text: any character may be in it.
      const password = await send(
        'POST',
        '/auth/register',
        {},
        { email: 'nul@example.com', password: `correct horse${nul}` },
      );
      expect(password.statusCode).toBe(201);
    });

    /** Every parameterized route, with `slot(s)` where the random value goes. */
    const templates: {
      method: Method;
      url: (value: string) => string;
      who: () => Record<string, string>;
      payload?: object;
      skip?: (value: string) => boolean;
    }[] = [
      { method: 'GET', url: (v) => `/clothes/${v}`, who: () => admin.headers },
      { method: 'PATCH', url: (v) => `/clothes/${v}`, who: () => admin.headers, payload: { name: 'Coat' } },
      { method: 'DELETE', url: (v) => `/clothes/${v}`, who: () => admin.headers },
      { method: 'DELETE', url: (v) => `/users/me/sessions/${v}`, who: () => admin.headers },
      { method: 'GET', url: (v) => `/users/${v}`, who: () => admin.headers, skip: routesElsewhere },
      {
        method: 'PATCH',
        url: (v) => `/users/${v}`,
        who: () => admin.headers,
        payload: { full_name: 'X' },
        skip: routesElsewhere,
      },
      { method: 'DELETE', url: (v) => `/users/${v}`, who: () => admin.headers, skip: routesElsewhere },
      { method: 'GET', url: (v) => `/users?email_prefix=${v}`, who: () => admin.headers },
      { method: 'GET', url: (v) => `/audit?actor_id=${v}`, who: () => admin.headers },
      { method: 'GET', url: (v) => `/audit?target_id=${v}`, who: () => admin.headers },
      { method: 'POST', url: (v) => `/rooms/${v}/join`, who: () => ({}), payload: { player: 'Sam' } },
      { method: 'GET', url: (v) => `/rooms/${v}`, who: () => player.headers },
      {
        method: 'POST',
        url: (v) => `/rooms/${v}/rolls`,
        who: () => player.headers,
        payload: { notation: 'd6' },
      },
      { method: 'DELETE', url: (v) => `/rooms/${v}/players/me`, who: () => player.headers },
      { method: 'DELETE', url: (v) => `/rooms/${v}`, who: () => admin.headers },
      { method: 'GET', url: (v) => `/rooms/${v}/events`, who: () => player.headers },
      {
        method: 'GET',
        url: (v) => `/rooms/${codeOf()}/events?last_event_id=${v}`,
        who: () => admin.headers,
        // A valid (or empty) resume point opens a live stream on the real room: not input junk.
        skip: (v) => /^[0-9]*$/.test(decodeURIComponentSafe(v) ?? 'x'),
      },
      {
        method: 'DELETE',
        url: (v) => `/rooms/${codeOf()}/players/${v}`,
        who: () => admin.headers,
        skip: routesElsewhere,
      },
      { method: 'DELETE', url: (v) => `/rooms/${v}/players/${randomUUID()}`, who: () => admin.headers },
    ];

    it.each(
      templates.map((template) => [`${template.method} ${template.url('{value}')}`, template] as const),
    )('%s never answers 5xx, whatever string the parameter holds (property)', async (_name, template) => {
      await fc.assert(
        fc.asyncProperty(encodedValue, async (value) => {
          if (template.skip?.(value) === true) return;
          const url = template.url(value);
          const response = await send(template.method, url, template.who(), template.payload);
          expect(response.statusCode, `${template.method} ${url}: ${response.body}`).toBeLessThan(500);
          if (response.statusCode >= 400) {
            expect(response.headers['content-type'], url).toMatch(/^application\/problem\+json/);
          }
        }),
        { numRuns: 60 },
      );
    });
  },
);
