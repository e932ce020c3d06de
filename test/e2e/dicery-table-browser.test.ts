/**
 * Dicery's game-table features in real browsers against a real server (issue 14, items 2–7 of the
 * web UI): who is online (presence), "Continue as Pat" when the room link is opened again, older
 * rolls loaded on demand back to the start, the history's JSON and CSV downloads, a secret roll
 * revealed by the host, and the verify page checking the signed log (and catching a tampered
 * file). The host plays on a desktop, Pat on a 390×844 phone.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import { readFile } from 'node:fs/promises';
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { DESKTOP, eventually, PHONE, signUpAndOpenRoom, useDiceryBrowser } from '../support/room-browser.js';

const suite = useDiceryBrowser();
const { newPerson, openPage, pageFailures } = suite;

function rollItems(page: Page): Locator {
  return page.getByTestId('roll-log').getByTestId('roll-item');
}

function playerItem(page: Page, name: string): Locator {
  return page.getByTestId('player-list').getByTestId('player-item').filter({ hasText: name });
}

async function joinByLink(page: Page, name: string): Promise<void> {
  await page.getByTestId('player-name-input').fill(name);
  await page.getByTestId('join-button').click();
  await page.getByTestId('roll-form').waitFor();
}

/** Clicks `testId` and returns the text of the file the browser downloads. */
async function download(page: Page, testId: string): Promise<{ name: string; text: string }> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testId).click()]);
  const path = await file.path();
  return { name: file.suggestedFilename(), text: await readFile(path, 'utf8') };
}

describe('Dicery game table in the browser', () => {
  it('presence, continue-as, history, export, reveal and the verify page', async () => {
    // --- A host on a desktop opens a room; Pat (phone) and Sam join by the room link. ----------
    const hostContext = await newPerson(DESKTOP);
    const host = await openPage(hostContext, '#/signup');
    const code = await signUpAndOpenRoom(host, 'Table Top');

    const patContext = await newPerson(PHONE);
    const pat = await openPage(patContext, `#/join/${code}`);
    await joinByLink(pat, 'Pat');
    const samContext = await newPerson(DESKTOP);
    let sam = await openPage(samContext, `#/join/${code}`);
    await joinByLink(sam, 'Sam');

    // --- Presence: everyone online, the host shown as host; Sam closes the tab, goes offline. ---
    await eventually(() => playerItem(host, 'Pat').getAttribute('data-online')).toBe('true');
    await eventually(() => playerItem(host, 'Sam').getAttribute('data-online')).toBe('true');
    await eventually(() => pat.getByTestId('host-item').getAttribute('data-online')).toBe('true');
    await eventually(() => pat.getByTestId('online-count').textContent()).toBe('2 online');
    await sam.close();
    await eventually(() => playerItem(host, 'Sam').getAttribute('data-online')).toBe('false');
    await eventually(() => playerItem(pat, 'Sam').getAttribute('data-online')).toBe('false');
    expect(await playerItem(pat, 'Pat').getAttribute('data-online')).toBe('true');
    // The host leaves the lobby: players see the host offline.
    await host.goto(`${suite.baseUrl()}/#/`);
    await eventually(() => pat.getByTestId('host-item').getAttribute('data-online')).toBe('false');
    await host.goto(`${suite.baseUrl()}/#/rooms/${code}`);
    await eventually(() => pat.getByTestId('host-item').getAttribute('data-online')).toBe('true');

    // --- "Continue as Pat": the room link opened again in Pat's browser resumes, one click. ----
    const patAgain = await openPage(patContext, `#/join/${code}`);
    await eventually(() => patAgain.getByTestId('continue-button').textContent()).toBe('Continue as Pat');
    expect(await patAgain.getByTestId('player-name-input').count()).toBe(0);
    await patAgain.getByTestId('continue-button').click();
    await patAgain.getByTestId('roll-form').waitFor();
    expect(await patAgain.getByTestId('you-are').textContent()).toBe('You are playing as Pat.');
    await patAgain.close();
    // Still two players: resuming never adds a player.
    await eventually(() =>
      host.getByTestId('player-list').getByTestId('player-name').allTextContents(),
    ).toEqual(['Pat', 'Sam']);

    // --- 25 rolls: a newly opened lobby shows the newest 20; older ones load on demand. --------
    for (let n = 1; n <= 25; n++) {
      await pat.getByTestId('quick-roll-d6').click();
      await eventually(() => rollItems(pat).count()).toBe(n);
    }
    sam = await openPage(samContext, `#/rooms/${code}`);
    await eventually(() => rollItems(sam).count()).toBe(20);
    await sam.getByTestId('load-older-button').click();
    await eventually(() => rollItems(sam).count()).toBe(25);
    await eventually(() => sam.getByTestId('history-end').textContent()).toBe(
      'This is the start of the room’s history.',
    );
    expect(await sam.getByTestId('load-older-button').isHidden()).toBe(true);
    // Every roll carries its date and time.
    const times = await sam
      .getByTestId('roll-log')
      .locator('time')
      .evaluateAll((nodes) => nodes.map((node) => node.getAttribute('datetime') ?? ''));
    expect(times).toHaveLength(25);
    for (const time of times) expect(Number.isNaN(Date.parse(time))).toBe(false);

    // --- Export: the whole history as JSON and CSV. ------------------------------------------
    const json = await download(sam, 'export-json');
    expect(json.name).toBe(`dicery-${code}-rolls.json`);
    const exported = JSON.parse(json.text) as { notation: string }[];
    expect(exported).toHaveLength(25);
    expect(new Set(exported.map((roll) => roll.notation))).toEqual(new Set(['1d6']));
    const csv = await download(sam, 'export-csv');
    expect(csv.name).toBe(`dicery-${code}-rolls.csv`);
    expect(csv.text.trim().split(/\r?\n/)).toHaveLength(26);

    // --- A secret roll, then the host reveals it: Sam's placeholder becomes the roll. --------
    await pat.getByTestId('secret-input').check();
    await pat.getByTestId('notation-input').fill('2d6+30');
    await pat.getByTestId('roll-button').click();
    const samNewest = rollItems(sam).first();
    await eventually(() => samNewest.getByTestId('roll-secret-placeholder').count()).toBe(1);
    expect(await samNewest.getByTestId('roll-total').count()).toBe(0);
    const hostNewest = rollItems(host).first();
    // The secret roll itself, not the 1d6 before it, whose total also reads as a number.
    await eventually(() => hostNewest.getByTestId('roll-notation').textContent()).toBe('2d6+30');
    const total = (await hostNewest.getByTestId('roll-total').textContent()) ?? '';
    await hostNewest.getByTestId('reveal-button').click();
    await eventually(() => rollItems(sam).first().getByTestId('roll-total').textContent()).toBe(total);
    expect(await rollItems(sam).first().getByTestId('roll-notation').textContent()).toBe('2d6+30');
    expect(await rollItems(sam).first().getByTestId('roll-secret').textContent()).toBe('secret, revealed');
    await eventually(() => rollItems(host).first().getByTestId('reveal-button').count()).toBe(0);

    // --- The verify page checks the signed log in the browser. -------------------------------
    await pat.getByTestId('verify-link').click();
    await eventually(() => pat.getByTestId('verdict').getAttribute('data-verified')).toBe('true');
    expect(await pat.getByTestId('verdict-title').textContent()).toBe('Verified 26 entries.');
    expect(await pat.getByTestId('verdict').textContent()).toContain('1 revealed and matching');
    const saved = await download(pat, 'save-log');
    // A saved log checks out; the same log with one total changed does not, and says where.
    await pat.getByTestId('log-file-input').setInputFiles({
      name: 'log.json',
      mimeType: 'application/json',
      buffer: Buffer.from(saved.text),
    });
    await eventually(() =>
      pat.getByTestId('file-result').getByTestId('verdict').getAttribute('data-verified'),
    ).toBe('true');
    const document = JSON.parse(saved.text) as { entries: { seq: number; entry: string }[] };
    const tampered = document.entries[4];
    if (tampered === undefined) throw new Error('log too short');
    tampered.entry = tampered.entry.replace(/"total":(\d+)/, (_all, value) => `"total":${Number(value) + 1}`);
    await pat.getByTestId('log-file-input').setInputFiles({
      name: 'tampered.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(document)),
    });
    const fileVerdict = pat.getByTestId('file-result').getByTestId('verdict');
    await eventually(() => fileVerdict.getAttribute('data-verified')).toBe('false');
    const problems = await fileVerdict.getByTestId('verdict-problem').allTextContents();
    expect(problems[0]).toBe(`Entry 5 (roll #${tampered.seq}): The entry text does not hash to its hash`);

    expect(pageFailures).toEqual([]);
  }, 180_000);
});
