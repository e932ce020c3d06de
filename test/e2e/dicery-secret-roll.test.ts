/**
 * A secret roll in real browsers against a real server (issue 14, item 5): a player ticks "Secret
 * roll", rolls; the other player's page shows "Pat rolled in secret" and nothing of the dice, live
 * and after a reload; the host's page shows the result. Desktop and a 390×844 phone.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import { describe, expect, it } from 'vitest';
import { eventually, joinRoom, signUpAndOpenRoom, useDiceryBrowser } from '../support/room-browser.js';

const { openPerson: openPage, pageFailures } = useDiceryBrowser();

describe('Dicery secret rolls in the browser', () => {
  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 },
  ]) {
    it(`shows a secret roll to the host and the roller only (${viewport.width}×${viewport.height})`, async () => {
      const host = await openPage(viewport, '#/signup');
      const code = await signUpAndOpenRoom(host, 'Secret Den');

      const pat = await openPage(viewport, '#/join');
      await joinRoom(pat, code, 'Pat');
      const sam = await openPage(viewport, '#/join');
      await joinRoom(sam, code, 'Sam');

      await pat.getByTestId('secret-input').check();
      await pat.getByTestId('notation-input').fill('3d6+40');
      await pat.getByTestId('label-input').fill('Insight QZX');
      await pat.getByTestId('roll-button').click();

      // Pat (the roller) and the host see the result; Sam sees only the placeholder.
      const patItem = pat.getByTestId('roll-log').getByTestId('roll-item').first();
      await eventually(() => patItem.getByTestId('roll-total').textContent()).toMatch(/^\d+$/);
      const total = (await patItem.getByTestId('roll-total').textContent()) ?? '';
      expect(Number(total)).toBeGreaterThanOrEqual(43);
      const hostItem = host.getByTestId('roll-log').getByTestId('roll-item').first();
      await eventually(() => hostItem.getByTestId('roll-total').textContent()).toBe(total);
      await eventually(() => hostItem.getByTestId('roll-label').textContent()).toBe('Insight QZX');

      const samLog = sam.getByTestId('roll-log');
      await eventually(() => samLog.getByTestId('roll-secret-placeholder').count()).toBe(1);
      const samText = async () => (await samLog.textContent()) ?? '';
      expect(await samText()).toContain('Pat rolled in secret');
      for (const needle of ['Insight QZX', '3d6+40']) expect(await samText()).not.toContain(needle);
      expect(await samLog.getByTestId('roll-total').count()).toBe(0);

      // After a reload, the snapshot shows the same placeholder.
      await sam.reload();
      await eventually(() => sam.getByTestId('roll-log').getByTestId('roll-secret-placeholder').count()).toBe(
        1,
      );
      expect((await sam.getByTestId('roll-log').textContent()) ?? '').not.toContain('Insight QZX');

      // The placeholder is a laid-out log entry like any roll (the mobile layout itself is item 9's).
      const box = await sam.getByTestId('roll-log').getByTestId('roll-item').first().boundingBox();
      expect(box).not.toBeNull();
      expect(pageFailures).toEqual([]);
    }, 120_000);
  }
});
