/**
 * Red team, sixth round (docs/security/red-team-2026-12f.md). Each finding's proof is an
 * `it.fails(...)`: it passes while the weakness is there and turns into a plain `it` once fixed.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedRoomEvent } from '../../src/apps/dicery/core/room-bus.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import {
  MAX_LIVE_CODES_PER_ACCOUNT,
  MAX_LIVE_CODES_PER_CLIENT,
} from '../../src/oauth/authorization-server.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, PASSWORD, signIn } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import {
  authorizationResponse,
  authorizeUrl,
  exchangeCode,
  locationOf,
  PUBLIC_URL,
  pkce,
  REDIRECT,
} from '../support/oauth-provider.js';
import { createRoom } from '../support/rooms.js';

describe('K1: an admin deleting an account skips what self-deletion does', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ roomsPerHourPerAccount: 1000, roomsPerHourPerIp: 1000 });
  });
  afterAll(async () => app.close());

  const deleteAsAdmin = async (id: string) => {
    const admin = await signIn(app, 'super_admin');
    const response = await app.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin.headers });
    expect(response.statusCode, response.body).toBe(204);
    return admin;
  };

  it('control: self-deletion closes the hosted rooms with a room_closed event', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const seen: LoggedRoomEvent[] = [];
    const unsubscribe = app.dicery.roomBus.subscribe(room.code, (event) => void seen.push(event));
    const response = await app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: host.headers,
      payload: { current_password: PASSWORD },
    });
    unsubscribe();
    expect(response.statusCode).toBe(204);
    expect(seen.map((event) => event.type)).toEqual(['room_closed']);
  });

  it('K1: DELETE /users/{id} tells the hosted rooms’ open streams that the room closed', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const seen: LoggedRoomEvent[] = [];
    const unsubscribe = app.dicery.roomBus.subscribe(room.code, (event) => void seen.push(event));
    await deleteAsAdmin(host.user.id);
    unsubscribe();
    // Both routes delete through the one routine, which runs gatehouse.onAccountDeleting's hooks.
    expect(seen.map((event) => event.type)).toEqual(['room_closed']);
  });

  it('control: self-deletion erases the account’s IP addresses and user agents from the audit log', async () => {
    const user = await signIn(app);
    const admin = await signIn(app, 'super_admin');
    await app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: user.headers,
      payload: { current_password: PASSWORD },
    });
    const page = await app.inject({ url: `/audit?actor_id=${user.user.id}`, headers: admin.headers });
    const items = page.json().items as { event: string; ip: string | null; user_agent: string | null }[];
    expect(items.map((item) => item.event)).toContain('login_succeeded');
    expect(items.filter((item) => item.ip !== null || item.user_agent !== null)).toEqual([]);
  });

  it('K1: DELETE /users/{id} erases the account’s IP addresses and user agents from the audit log', async () => {
    const user = await signIn(app);
    const admin = await deleteAsAdmin(user.user.id);
    const page = await app.inject({ url: `/audit?actor_id=${user.user.id}`, headers: admin.headers });
    const items = page.json().items as { event: string; ip: string | null; user_agent: string | null }[];
    expect(items.map((item) => item.event)).toContain('login_succeeded');
    expect(items.filter((item) => item.ip !== null || item.user_agent !== null)).toEqual([]);
  });
});

describe('K2: J2’s fix, bypassed by an app that exchanges its own codes', () => {
  let app: FastifyInstance;
  let bouncer: OAuthClient;
  let other: OAuthClient;
  beforeAll(async () => {
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL });
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const operator = { actorId: null };
    bouncer = (await clients.create({ name: 'Bouncer', redirectUris: [REDIRECT] }, operator)).client;
    other = (await clients.create({ name: 'Other', redirectUris: [REDIRECT] }, operator)).client;
  });
  afterAll(async () => app.close());

  const request = (client: OAuthClient, challenge: string, extra: Record<string, string> = {}) =>
    authorizeUrl({
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 'st',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    });

  const exchange = (client: OAuthClient, code: string, verifier: string) =>
    exchangeCode(app, client, code, verifier);

  it('K2: an allowed app that bounces the tab and exchanges each code does not refuse the person’s sign-in to another app', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const first = pkce();
    const allowed = await authorizationResponse(app, browser, bouncer, first.challenge, 'openid');
    expect(
      (await exchange(bouncer, String(allowed.searchParams.get('code')), first.verifier)).statusCode,
    ).toBe(200);
    // The app's redirect page: back to /authorize at once (remembered consent, no page shown), and
    // the app's backend exchanges every code it gets. Spent codes are kept for replay detection
    // and never displaced; they fill the app's own cap, MAX_LIVE_CODES_PER_CLIENT, after which the
    // app's next codes are refused. It bounces on until the account-wide cap would have been full.
    const outcomes: (number | string | null)[] = [];
    for (let visit = 1; visit < MAX_LIVE_CODES_PER_ACCOUNT; visit += 1) {
      const pair = pkce();
      const bounce = locationOf(
        await browser.request(
          'GET',
          request(bouncer, pair.challenge, { prompt: 'none', state: `b${visit}` }),
        ),
      );
      const code = bounce.searchParams.get('code');
      outcomes.push(
        code === null
          ? bounce.searchParams.get('error')
          : (await exchange(bouncer, code, pair.verifier)).statusCode,
      );
    }
    expect(outcomes).toEqual([
      ...Array.from({ length: MAX_LIVE_CODES_PER_CLIENT - 1 }, () => 200),
      ...Array.from(
        { length: MAX_LIVE_CODES_PER_ACCOUNT - MAX_LIVE_CODES_PER_CLIENT },
        () => 'temporarily_unavailable',
      ),
    ]);
    // The person now signs in to another app (a first consent).
    const mine = pkce();
    const toOther = await authorizationResponse(app, browser, other, mine.challenge, 'openid');
    expect(toOther.searchParams.get('error')).toBeNull();
    const tokens = await exchange(other, String(toOther.searchParams.get('code')), mine.verifier);
    expect(tokens.statusCode).toBe(200);
  });
});
