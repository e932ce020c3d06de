/**
 * Cookie tossing against Dicery in a real browser (red-team 2026-12b G2): a page on a sibling
 * subdomain plants its own room cookie under the parent domain, and the victim's browser sends it
 * beside the victim's own. Chromium's cookie store decides what is sent, in which order, and what
 * the server's clearing headers really remove, so this is where the fix is shown to work.
 *
 * Both host names resolve to the loopback server (`--host-resolver-rules`). They are not
 * "potentially trustworthy" origins, so the server runs with plain cookie names (COOKIE_SECURE off):
 * the domain and path rules under test are the same as for `__Secure-` names.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { STREAM_COOKIE_PLANTED } from '../../web/src/lobby-controller.js';
import { signIn } from '../support/accounts.js';
import { launchChromium } from '../support/browser.js';
import { listenOnLoopback } from '../support/listen.js';
import { eventually } from '../support/room-browser.js';
import { createRoom, joinAsBot } from '../support/rooms.js';

const PARENT = 'gatehouse.test';
const APP_HOST = `app.${PARENT}`;
const SIBLING_HOST = `evil.${PARENT}`;

describe('red team 2026-12b G2 in Chromium: a planted room cookie', () => {
  let app: FastifyInstance;
  let chromium: Browser;
  let context: BrowserContext;
  let port = 0;

  beforeAll(async () => {
    app = await buildTestServer({ cookieSecure: false, roomJoinsPerMinute: 10_000 });
    port = Number(new URL(await listenOnLoopback(app)).port);
    chromium = await launchChromium([`--host-resolver-rules=MAP *.${PARENT} 127.0.0.1`]);
    context = await chromium.newContext();
  });
  afterAll(async () => {
    await context?.close();
    await chromium?.close();
    await app?.close();
  });

  /** A same-origin document on `host` to run fetch and document.cookie from. */
  const pageOn = async (host: string): Promise<Page> => {
    const page = await context.newPage();
    const response = await page.goto(`http://${host}:${port}/healthz`);
    expect(response?.status()).toBe(200);
    return page;
  };

  /** `fetch` from `page` (same origin, the browser's own cookies), answering status and JSON. */
  const call = (page: Page, method: string, path: string, body?: object, csrf?: string) =>
    page.evaluate(
      async ({ method, path, body, csrf }) => {
        const headers: Record<string, string> = { accept: 'application/json' };
        if (body !== undefined) headers['content-type'] = 'application/json';
        if (csrf !== undefined) headers['x-csrf-token'] = csrf;
        const response = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: 'same-origin',
        });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      },
      { method, path, body, csrf },
    );

  it('neither picks the player nor locks them out: junk is set aside, a valid planted token is refused once and cleared', async () => {
    const host = await signIn(app);
    const { code } = await createRoom(app, host);
    const mallory = await joinAsBot(app, code, 'Mallory');
    const name = `dicery_room_${code}`;

    // The victim joins in the browser: the server sets the host-only room cookie at /rooms/<code>.
    const victimPage = await pageOn(APP_HOST);
    const joined = await call(victimPage, 'POST', `/rooms/${code}/join`, { player: 'Victim' });
    expect(joined.status).toBe(201);
    const victimId = (joined.json.player as { id: string }).id;

    // The sibling plants two: junk on the snapshot's path, and Mallory's own valid room token on a
    // longer path (sent first on /rolls, RFC 6265 §5.4), both for the whole parent domain.
    const sibling = await pageOn(SIBLING_HOST);
    await sibling.evaluate(
      ({ name, code, token, parent }) => {
        // The Cookie Store API needs a secure context; a sibling's script would do just this.
        // biome-ignore lint/suspicious/noDocumentCookie: the attack under test
        document.cookie = `${name}=junk; Domain=${parent}; Path=/rooms/${code}`;
        // biome-ignore lint/suspicious/noDocumentCookie: the attack under test
        document.cookie = `${name}=${token}; Domain=${parent}; Path=/rooms/${code}/rolls`;
      },
      { name, code, token: mallory.token, parent: PARENT },
    );
    const sent = await context.cookies(`http://${APP_HOST}:${port}/rooms/${code}/rolls`);
    expect(sent.filter((cookie) => cookie.name === name)).toHaveLength(3);

    // Junk cannot be this server's: the victim's own token is used at once.
    const snapshot = await call(victimPage, 'GET', `/rooms/${code}`);
    expect(snapshot.status).toBe(200);
    expect(snapshot.json.you).toMatchObject({ player_id: victimId });

    // Two valid tokens of this room: neither is picked (Mallory could otherwise choose who the
    // victim is); the refusal carries the headers that drop the planted copy...
    const csrf = String((await call(victimPage, 'GET', '/auth/csrf')).json.csrf_token);
    const refused = await call(victimPage, 'POST', `/rooms/${code}/rolls`, { notation: '1d20' }, csrf);
    expect(refused.status).toBe(400);
    expect(refused.json.code).toBe('AMBIGUOUS_COOKIE');
    expect(JSON.stringify(refused.json)).not.toContain(mallory.id);

    // ...so the planted cookies are gone from the browser and the victim's own cookie is kept,
    // and the very next try rolls as the victim.
    const left = (await context.cookies(`http://${APP_HOST}:${port}/rooms/${code}/rolls`)).filter(
      (cookie) => cookie.name === name,
    );
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ domain: APP_HOST, path: `/rooms/${code}` });
    const rolled = await call(victimPage, 'POST', `/rooms/${code}/rolls`, { notation: '1d20' }, csrf);
    expect(rolled.status).toBe(201);
    expect(rolled.json.player).toMatchObject({ id: victimId });
  });

  /**
   * The victim joins `code` in a page of their own (a fresh context: their own cookie store), a
   * page on `planter` plants Mallory's room token for the room's event stream only (a longer path,
   * RFC 6265 §5.4) under `domain`, and then the victim opens the room's lobby in the web UI.
   */
  const lobbyWithPlantedStreamCookie = async (planter: string, domain: string) => {
    const host = await signIn(app);
    const { code } = await createRoom(app, host);
    const mallory = await joinAsBot(app, code, 'Mallory');
    const own = await chromium.newContext();
    const victim = await own.newPage();
    await victim.goto(`http://${APP_HOST}:${port}/healthz`);
    const joined = await victim.evaluate(async (path) => {
      const response = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ player: 'Victim' }),
      });
      return response.status;
    }, `/rooms/${code}/join`);
    expect(joined).toBe(201);
    const sibling = await own.newPage();
    await sibling.goto(`http://${planter}:${port}/healthz`);
    await sibling.evaluate(
      ({ name, path, token, domain }) => {
        // biome-ignore lint/suspicious/noDocumentCookie: the attack under test
        document.cookie = `${name}=${token}; Domain=${domain}; Path=${path}`;
      },
      { name: `dicery_room_${code}`, path: `/rooms/${code}/events`, token: mallory.token, domain },
    );
    await victim.goto(`http://${APP_HOST}:${port}/#/rooms/${code}`);
    return { code, mallory, own, victim };
  };

  it('the lobby gets its live updates back after a planted cookie refused its stream (reopened once, no reload)', async () => {
    const { code, mallory, own, victim } = await lobbyWithPlantedStreamCookie(SIBLING_HOST, PARENT);
    try {
      // The stream was refused AMBIGUOUS_COOKIE (its answer dropped the sibling's copy) and reopened:
      // a roll made elsewhere arrives live, and no status says live updates stopped.
      // A roll a second at most: a roll per poll (every 50 ms) reached ROOM_ROLLS_PER_MINUTE within
      // seconds on a slow machine, and every later poll failed on the 429.
      let lastRoll = 0;
      await eventually(async () => {
        if (Date.now() - lastRoll >= 1_000) {
          lastRoll = Date.now();
          const rolled = await app.inject({
            method: 'POST',
            url: `/rooms/${code}/rolls`,
            headers: mallory.headers,
            payload: { notation: '1d6', label: 'live' },
          });
          expect(rolled.statusCode).toBe(201);
        }
        return victim.getByTestId('roll-log').getByTestId('roll-player').allTextContents();
      }).toContain('Mallory');
      expect(await victim.getByTestId('status-message').isHidden()).toBe(true);
      const left = (await own.cookies(`http://${APP_HOST}:${port}/rooms/${code}/events`)).filter(
        (cookie) => cookie.name === `dicery_room_${code}`,
      );
      expect(left).toHaveLength(1);
      expect(left[0]).toMatchObject({ domain: APP_HOST, path: `/rooms/${code}` });
    } finally {
      await own.close();
    }
  });

  it('a planted cookie that keeps coming back stops the stream with the way out, not "too many tabs"', async () => {
    const { own, victim, code, mallory } = await lobbyWithPlantedStreamCookie(SIBLING_HOST, PARENT);
    try {
      // The sibling plants again before every stream request (its page still open in another tab):
      // the refusal's clearing headers drop each copy, and the next request carries a new one.
      await own.route(`**/rooms/${code}/events*`, async (route) => {
        await own.addCookies([
          {
            name: `dicery_room_${code}`,
            value: mallory.token,
            domain: `.${PARENT}`,
            path: `/rooms/${code}/events`,
          },
        ]);
        await route.continue();
      });
      await victim.reload();
      await eventually(() => victim.getByTestId('status-message').textContent()).toContain(
        STREAM_COOKIE_PLANTED,
      );
      expect(await victim.getByTestId('reconnect-button').isVisible()).toBe(true);
    } finally {
      await own.close();
    }
  });
});
