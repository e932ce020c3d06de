/**
 * Dicery in a real browser against a real server: a host signs up, logs out and in, and opens two
 * rooms; players join from separate browser contexts (separate cookie jars); rolls show up live on
 * every page of their room and nowhere else; a kicked player's page says so, and so do the pages
 * left open when the host closes the room.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import { randomUUID } from 'node:crypto';
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { eventually, joinRoom, useDiceryBrowser } from '../support/room-browser.js';

const { newPerson, openPage, openPerson: openAt, pageFailures } = useDiceryBrowser();

/** A page in a fresh phone-sized browser context: its own cookies, like another person's phone. */
const openPerson = (path: string) => openAt({ width: 390, height: 844 }, path);

function rollItems(page: Page): Locator {
  return page.getByTestId('roll-log').getByTestId('roll-item');
}

function playerNames(page: Page): Promise<string[]> {
  return page.getByTestId('player-list').getByTestId('player-name').allTextContents();
}

/**
 * Issue 14: on a 390×844 phone the roll form (players only), the player list and the newest roll
 * lie wholly inside the first screen, with the page scrolled to the top.
 */
async function expectFirstScreen(page: Page, options: { rollForm: boolean }): Promise<void> {
  const viewport = page.viewportSize();
  expect(viewport).toEqual({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  const boxes = {
    newestRoll: await rollItems(page).first().boundingBox(),
    playerList: await page.getByTestId('player-list').boundingBox(),
    rollForm: options.rollForm ? await page.getByTestId('roll-form').boundingBox() : null,
  };
  for (const [name, box] of Object.entries(boxes)) {
    if (name === 'rollForm' && !options.rollForm) continue;
    expect(box, name).not.toBeNull();
    if (box === null) continue;
    expect({ name, top: box.y >= 0, bottom: box.y + box.height <= 844 }).toEqual({
      name,
      top: true,
      bottom: true,
    });
  }
}

async function createRoom(page: Page, name: string): Promise<string> {
  await page.getByTestId('room-name-input').fill(name);
  await page.getByTestId('create-room-button').click();
  const code = (await page.getByTestId('room-code').textContent())?.trim() ?? '';
  expect(code).toMatch(/^[2-9A-HJKMNP-Z]{8}$/);
  return code;
}

describe('Dicery in the browser', () => {
  it('plays a room end to end: sign-up, rooms, live rolls, isolation, kick, close', async () => {
    // --- The host signs up (and is signed in), logs out, and logs in again. ---------------------
    const email = `host-${randomUUID()}@example.com`;
    const password = 'plum-Tiger-42-lantern';
    const hostContext = await newPerson();
    const host = await openPage(hostContext, '#/signup');
    await host.getByTestId('email-input').fill(email);
    await host.getByTestId('full-name-input').fill('Hannah Host');
    await host.getByTestId('password-input').fill(password);
    await host.getByTestId('signup-button').click();
    await host.getByTestId('welcome-heading').waitFor();
    await host.getByTestId('logout-button').click();
    await host.getByTestId('nav-login').click();
    await host.getByTestId('email-input').fill(email);
    await host.getByTestId('password-input').fill('not-the-password');
    await host.getByTestId('login-button').click();
    await eventually(() => host.getByTestId('form-error').textContent()).toMatch(
      /invalid email or password/i,
    );
    await host.getByTestId('password-input').fill(password);
    await host.getByTestId('login-button').click();
    await host.getByTestId('welcome-heading').waitFor();

    // --- Two rooms. --------------------------------------------------------------------------
    const code = await createRoom(host, 'Dragon Den');
    await host.getByTestId('lobby-link').click();
    await eventually(() => host.getByTestId('room-name').textContent()).toBe('Dragon Den');
    expect(await host.getByTestId('room-code').textContent()).toBe(code);
    const hostOther = await openPage(hostContext, '#/rooms/new');
    const otherCode = await createRoom(hostOther, 'Side Quest');
    expect(otherCode).not.toBe(code);

    // --- Players join: by typing the code (in lower case), and by the shared link. --------------
    const alice = await openPerson('#/join');
    await joinRoom(alice, code.toLowerCase(), 'Alice');
    expect(await alice.getByTestId('room-code').textContent()).toBe(code);
    const bob = await openPerson(`#/join/${code}`);
    await bob.getByTestId('player-name-input').fill('Bob');
    await bob.getByTestId('join-button').click();
    await bob.getByTestId('roll-form').waitFor();
    const carol = await openPerson('#/join');
    await joinRoom(carol, otherCode, 'Carol');

    // Joins show up live, without reloading.
    await eventually(() => playerNames(alice)).toEqual(['Alice', 'Bob']);
    await eventually(() => playerNames(host)).toEqual(['Alice', 'Bob']);
    await eventually(() => playerNames(carol)).toEqual(['Carol']);

    // --- A bad notation is explained where it went wrong. -------------------------------------
    await alice.getByTestId('notation-input').fill('2d20x');
    await alice.getByTestId('roll-button').click();
    await alice.getByTestId('notation-error-position').waitFor();
    expect(await alice.getByTestId('roll-error').getAttribute('role')).toBe('alert');
    expect(await alice.getByTestId('notation-error-position').locator('mark').textContent()).toBe('x');

    // --- Carol rolls in the other room first, so its events are in flight before Alice's. -------
    await carol.getByTestId('quick-roll-d20').click();
    await eventually(() => rollItems(carol).count()).toBe(1);

    // --- Alice rolls; every page of her room shows it live. -------------------------------------
    await alice.getByTestId('notation-input').fill('3d6kh2+1');
    await alice.getByTestId('label-input').fill('Attack');
    await alice.getByTestId('roll-button').click();
    for (const page of [alice, bob, host]) {
      await eventually(() => rollItems(page).count()).toBe(1);
      const item = rollItems(page).first();
      expect(await item.getByTestId('roll-player').textContent()).toBe('Alice');
      expect(await item.getByTestId('roll-notation').textContent()).toBe('3d6kh2+1');
      expect(await item.getByTestId('roll-label').textContent()).toBe('Attack');
      expect(await item.getByTestId('die').count()).toBe(3);
      expect(await item.locator('[data-testid="die"][data-kept="false"]').count()).toBe(1);
    }
    const aliceTotal = await rollItems(alice).first().getByTestId('roll-total').textContent();
    expect(await rollItems(bob).first().getByTestId('roll-total').textContent()).toBe(aliceTotal);

    // Bob's quick roll lands on Alice's page above hers: the log is newest first.
    await bob.getByTestId('quick-roll-d20').click();
    await eventually(() => rollItems(alice).count()).toBe(2);
    expect(await rollItems(alice).first().getByTestId('roll-player').textContent()).toBe('Bob');
    expect(await rollItems(alice).first().getByTestId('roll-notation').textContent()).toBe('1d20');

    // --- On a phone, the roll form, the players and the newest roll are on the first screen. ----
    await expectFirstScreen(alice, { rollForm: true });
    const hostPhone = await openPage(hostContext, `#/rooms/${code}`);
    await hostPhone.setViewportSize({ width: 390, height: 844 });
    await eventually(() => rollItems(hostPhone).count()).toBe(2);
    await eventually(() => playerNames(hostPhone)).toEqual(['Alice', 'Bob']);
    await expectFirstScreen(hostPhone, { rollForm: false });
    await hostPhone.close();

    // --- The other room never sees them, nor they it. ------------------------------------------
    // Carol rolls again: once that shows on her page, her stream has delivered everything before
    // it, so anything from Alice's room would be on screen by now.
    await carol.getByTestId('quick-roll-d6').click();
    await eventually(() => rollItems(carol).count()).toBe(2);
    expect(await carol.getByTestId('roll-log').getByTestId('roll-player').allTextContents()).toEqual([
      'Carol',
      'Carol',
    ]);
    expect(await playerNames(carol)).toEqual(['Carol']);
    expect(await alice.getByTestId('roll-log').getByTestId('roll-player').allTextContents()).toEqual([
      'Bob',
      'Alice',
    ]);

    // --- The host kicks Bob; Bob's page says so, everyone else's list drops him. -------------
    await host
      .getByTestId('player-list')
      .getByTestId('player-item')
      .filter({ hasText: 'Bob' })
      .getByTestId('kick-button')
      .click();
    await eventually(() => bob.getByTestId('status-message').textContent()).toBe(
      'The host removed you from this room.',
    );
    expect(await bob.getByTestId('roll-form').count()).toBe(0);
    await eventually(() => playerNames(alice)).toEqual(['Alice']);
    await eventually(() => playerNames(host)).toEqual(['Alice']);

    // A kick sticks to his seat: reloading does not let him back in, and says why.
    await bob.reload();
    await eventually(() => bob.getByTestId('status-message').textContent()).toBe(
      'The host removed you from this room.',
    );
    expect(await bob.getByTestId('roll-form').count()).toBe(0);

    // --- The host closes the room; the players still in it are told. -------------------------
    await host.getByTestId('close-room-button').click();
    await host.getByTestId('confirm-close-button').click();
    await eventually(() => alice.getByTestId('status-message').textContent()).toBe(
      'The host closed this room.',
    );
    await eventually(() => host.getByTestId('status-message').textContent()).toBe('You closed this room.');
    expect(await alice.getByTestId('roll-form').count()).toBe(0);

    expect(pageFailures).toEqual([]);
  }, 120_000);
});
