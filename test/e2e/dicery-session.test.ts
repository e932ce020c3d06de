/**
 * A whole Dicery session in real browsers (issue 14, "Done when"): a host, two players and a
 * spectator on a watch link, with a secret roll and page reloads, on a desktop window and on a
 * 390×844 phone. For every participant the newest roll lies inside the viewport; the spectator
 * and the other player see only the secret roll's placeholder, the host and the roller see it in
 * full; the spectator never shows up as a player, cannot roll, and stops when the link is revoked.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { eventually, joinRoom, signUpAndOpenRoom, useDiceryBrowser } from '../support/room-browser.js';

const { openPerson, pageFailures } = useDiceryBrowser();

async function roll(page: Page, notation: string, options: { label?: string; secret?: boolean } = {}) {
  if (options.secret === true) await page.getByTestId('secret-input').check();
  await page.getByTestId('notation-input').fill(notation);
  if (options.label !== undefined) await page.getByTestId('label-input').fill(options.label);
  await page.getByTestId('roll-button').click();
}

const newestRoll = (page: Page) => page.getByTestId('roll-log').getByTestId('roll-item').first();
const rollCount = (page: Page) => page.getByTestId('roll-log').getByTestId('roll-item').count();
const logText = async (page: Page) => (await page.getByTestId('roll-log').textContent()) ?? '';
const playerNames = (page: Page) =>
  page.getByTestId('player-list').getByTestId('player-name').allTextContents();

/**
 * The newest roll's box lies wholly inside the viewport, with the page scrolled to the top: what
 * `getBoundingClientRect` says against `innerWidth` × `innerHeight`.
 */
async function expectNewestRollOnScreen(page: Page, who: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  const fit = await newestRoll(page).evaluate((element) => {
    const box = element.getBoundingClientRect();
    return {
      top: box.top >= 0,
      left: box.left >= 0,
      bottom: box.bottom <= window.innerHeight,
      right: box.right <= window.innerWidth,
      visible: box.width > 0 && box.height > 0,
    };
  });
  expect({ who, ...fit }).toEqual({ who, top: true, left: true, bottom: true, right: true, visible: true });
}

describe('A Dicery session in the browser: host, two players, a spectator', () => {
  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 },
  ]) {
    it(`plays a session with a secret roll and reloads (${viewport.width}×${viewport.height})`, async () => {
      // --- The host opens a room and creates a watch link. ----------------------------------------
      const host = await openPerson(viewport, '#/signup');
      const code = await signUpAndOpenRoom(host, 'Table Four');
      await host.getByTestId('create-watch-link-button').click();
      const watchUrl = (await host.getByTestId('watch-link-url').textContent())?.trim() ?? '';
      // The capability rides in the fragment, never in the path or query sent to the server.
      expect(new URL(watchUrl).hash).toMatch(new RegExp(`^#/watch/${code}\\?token=[A-Za-z0-9_-]{43}$`));
      await eventually(() => host.getByTestId('watch-link-item').count()).toBe(1);

      // --- Two players join, a spectator opens the watch link. ----------------------------------
      const pat = await openPerson(viewport, '#/join');
      await joinRoom(pat, code, 'Pat');
      const sam = await openPerson(viewport, '#/join');
      await joinRoom(sam, code, 'Sam');
      const spectator = await openPerson(viewport, watchUrl);
      await spectator.getByTestId('watching-banner').waitFor();
      // The token left the address bar (and the history entry) once exchanged for the cookie.
      await eventually(async () => new URL(spectator.url()).hash).toBe(`#/rooms/${code}`);
      expect(await spectator.getByTestId('roll-form').count()).toBe(0);
      for (const page of [host, pat, sam, spectator]) {
        await eventually(() => playerNames(page)).toEqual(['Pat', 'Sam']);
      }

      // --- A roll everyone sees. -----------------------------------------------------------------
      await roll(pat, '1d20+100', { label: 'Open check' });
      for (const page of [host, pat, sam, spectator]) {
        await eventually(() => newestRoll(page).getByTestId('roll-label').textContent()).toBe('Open check');
      }

      // --- Sam's secret roll: the host and Sam see it; Pat and the spectator a placeholder. -------
      await roll(sam, '3d6+40', { label: 'Insight QZX', secret: true });
      // Wait for the secret roll itself: until it arrives, Sam's newest roll is Pat's open check,
      // whose total (101 to 120) also reads as a number.
      await eventually(() => newestRoll(sam).getByTestId('roll-label').textContent()).toBe('Insight QZX');
      const total = (await newestRoll(sam).getByTestId('roll-total').textContent()) ?? '';
      expect(Number(total)).toBeGreaterThanOrEqual(43);
      expect(Number(total)).toBeLessThanOrEqual(58);
      await eventually(() => newestRoll(host).getByTestId('roll-total').textContent()).toBe(total);
      await eventually(() => newestRoll(host).getByTestId('roll-label').textContent()).toBe('Insight QZX');
      const expectPlaceholderOnly = async (page: Page) => {
        await eventually(() => rollCount(page)).toBe(2);
        await eventually(() => newestRoll(page).getByTestId('roll-secret-placeholder').count()).toBe(1);
        const text = await logText(page);
        expect(text).toContain('Sam rolled in secret');
        for (const needle of ['Insight QZX', '3d6+40']) expect(text).not.toContain(needle);
        expect(await newestRoll(page).getByTestId('roll-total').count()).toBe(0);
      };
      await expectPlaceholderOnly(pat);
      await expectPlaceholderOnly(spectator);

      // --- Reloads: the spectator keeps watching, the placeholder stays a placeholder. ------------
      for (const page of [spectator, pat, sam]) await page.reload();
      await spectator.getByTestId('watching-banner').waitFor();
      await expectPlaceholderOnly(spectator);
      await expectPlaceholderOnly(pat);
      await eventually(() => newestRoll(sam).getByTestId('roll-total').textContent()).toBe(total);
      await eventually(() => playerNames(spectator)).toEqual(['Pat', 'Sam']);

      // --- After the reloads, live play goes on for everyone. -------------------------------------
      await roll(pat, '2d6');
      for (const page of [host, pat, sam, spectator]) {
        await eventually(() => rollCount(page)).toBe(3);
        await eventually(() => newestRoll(page).getByTestId('roll-notation').textContent()).toBe('2d6');
      }

      // --- The newest roll is on screen for every participant. -----------------------------------
      for (const [who, page] of [
        ['host', host],
        ['Pat', pat],
        ['Sam', sam],
        ['spectator', spectator],
      ] as const) {
        await expectNewestRollOnScreen(page, who);
      }

      // --- A second spectator of the same link stops watching; the first keeps watching. --------
      const leaving = await openPerson(viewport, watchUrl);
      await leaving.getByTestId('watching-banner').waitFor();
      await eventually(() => rollCount(leaving)).toBe(3);
      await leaving.getByTestId('stop-watching-button').click();
      await eventually(() => leaving.getByTestId('notice').textContent()).toBe(
        'You stopped watching this room.',
      );
      // The watch cookie is gone: the room link now asks to join instead of showing the room.
      await leaving.goto(`${new URL(watchUrl).origin}/#/rooms/${code}`);
      await leaving.getByTestId('player-name-input').waitFor();
      await roll(pat, '1d4');
      await eventually(() => rollCount(spectator)).toBe(4);

      // --- Revoking the link stops the spectator, and says why. ---------------------------------
      await host.getByTestId('revoke-watch-link-button').click();
      await eventually(() => host.getByTestId('watch-link-item').count()).toBe(0);
      await eventually(() => spectator.getByTestId('status-message').first().textContent()).toContain(
        'revoked this watch link',
      );
      expect(pageFailures).toEqual([]);
    }, 180_000);
  }
});
