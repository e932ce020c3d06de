import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { createAccount, PASSWORD, type SignedIn, signIn } from '../support/accounts.js';
import { type CreatedRoom, createRoom, type JoinedPlayer, joinAsBot } from '../support/rooms.js';

/**
 * Issue 8: `full_name` and clothes names accepted U+202E that player names refused. Every
 * human-visible name now goes through one rule (src/text/display-text.ts); this checks each field
 * through its route, so a route that validates on its own again fails here.
 */
describe('one display-text rule for every human-visible name', () => {
  let app: FastifyInstance;
  let admin: SignedIn;
  let room: CreatedRoom;
  let player: JoinedPlayer;

  beforeAll(async () => {
    app = await buildTestServer({ roomJoinsPerMinute: 10_000 });
    admin = await signIn(app, 'super_admin');
    room = await createRoom(app, admin);
    player = await joinAsBot(app, room.code, 'Pat');
  });
  afterAll(async () => app.close());

  const BAD = {
    'right-to-left override': 'Alice\u202Eevil',
    'left-to-right isolate': '\u2066Alice',
    'zero-width space': 'Al\u200Bice',
    'word joiner': 'Al\u2060ice',
    'byte order mark': '\uFEFFAlice',
    NUL: 'Al\u0000ice',
  };

  const fields: [string, (text: string) => Promise<LightMyRequestResponse>, string][] = [
    [
      'full_name at sign-up',
      (text) =>
        app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { email: `n${Math.random()}@example.com`, password: PASSWORD, full_name: text },
        }),
      'full_name',
    ],
    [
      'full_name on PATCH /users/me',
      (text) =>
        app.inject({
          method: 'PATCH',
          url: '/users/me',
          headers: admin.headers,
          payload: { full_name: text },
        }),
      'full_name',
    ],
    [
      'full_name on PATCH /users/{id}',
      async (text) => {
        const user = await createAccount(app);
        return app.inject({
          method: 'PATCH',
          url: `/users/${user.id}`,
          headers: admin.headers,
          payload: { full_name: text },
        });
      },
      'full_name',
    ],
    [
      'clothes name on POST /clothes',
      (text) =>
        app.inject({
          method: 'POST',
          url: '/clothes',
          headers: admin.headers,
          payload: { name: text, photo_url: 'https://img.example.test/a.jpg', size: 'm', color: 'red' },
        }),
      'name',
    ],
    [
      'room name',
      (text) =>
        app.inject({ method: 'POST', url: '/rooms', headers: admin.headers, payload: { name: text } }),
      'name',
    ],
    [
      'player name',
      (text) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/join`,
          payload: { player: text, transport: 'bearer' },
        }),
      'player',
    ],
    [
      'roll label',
      (text) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/rolls`,
          headers: player.headers,
          payload: { notation: 'd6', label: text },
        }),
      'label',
    ],
  ];

  describe.each(fields)('%s', (_name, send, field) => {
    it.each(Object.entries(BAD))('refuses a %s with 400 naming the field', async (_label, text) => {
      const response = await send(text);
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
    });

    it('stores NFC with spaces collapsed and trimmed', async () => {
      const response = await send('  Zoe\u0308   Lee ');
      expect(response.statusCode, response.body).toBeLessThan(300);
      expect(response.body).toContain('Zo\u00EB Lee');
      expect(response.body).not.toContain('Zoe\u0308');
    });
  });
});
