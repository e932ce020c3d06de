/**
 * A secret roll in real browsers against a real server (issue 14, item 5): a player ticks "Secret
 * roll", rolls; the other player's page shows "Pat rolled in secret" and nothing of the dice, live
 * and after a reload; the host's page shows the result. Desktop and a 390×844 phone.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { launchChromium } from '../support/browser.js';

const UI_TIMEOUT = 15_000;
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: UI_TIMEOUT, interval: 50 });

let app: FastifyInstance | undefined;
let browser: Browser | undefined;
let baseUrl = '';
const contexts: BrowserContext[] = [];
const pageFailures: string[] = [];

beforeAll(async () => {
  app = await buildTestServer();
  await app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.allSettled(contexts.map((context) => context.close()));
  await browser?.close();
  await app?.close();
});

async function openPage(viewport: { width: number; height: number }, path: string): Promise<Page> {
  if (browser === undefined) throw new Error('browser not started');
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  page.on('pageerror', (error) => pageFailures.push(`pageerror: ${error.message}`));
  await page.goto(`${baseUrl}/${path}`);
  return page;
}

async function joinRoom(page: Page, code: string, name: string): Promise<void> {
  await page.getByTestId('join-code-input').fill(code);
  await page.getByTestId('player-name-input').fill(name);
  await page.getByTestId('join-button').click();
  await page.getByTestId('roll-form').waitFor();
}

describe('Dicery secret rolls in the browser', () => {
  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 },
  ]) {
    it(`shows a secret roll to the host and the roller only (${viewport.width}×${viewport.height})`, async () => {
      const host = await openPage(viewport, '#/signup');
      await host.getByTestId('email-input').fill(`host-${randomUUID()}@example.com`);
      await host.getByTestId('full-name-input').fill('Hannah Host');
      await host.getByTestId('password-input').fill('plum-Tiger-42-lantern');
      await host.getByTestId('signup-button').click();
      await host.getByTestId('welcome-heading').waitFor();
      await host.getByTestId('room-name-input').fill('Secret Den');
      await host.getByTestId('create-room-button').click();
      const code = (await host.getByTestId('room-code').textContent())?.trim() ?? '';
      await host.getByTestId('lobby-link').click();
      await eventually(() => host.getByTestId('room-name').textContent()).toBe('Secret Den');

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
