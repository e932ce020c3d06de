import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { createUser } from '../support/accounts.js';
import { launchChromium, runBrowserTests } from '../support/browser.js';
import { freePort } from '../support/private-postgres.js';

describe.runIf(runBrowserTests)('/docs in a real browser', () => {
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    // Swagger UI sends "Try it out" requests to the document's `servers`, which come from
    // PUBLIC_URL: so the server must know its own address before it is built.
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await buildTestServer({ port, publicUrl: base });
    await app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('Authorize with the password flow, then Try it out on /users/me answers 200 under the CSP', async () => {
    const user = await createUser(app, { email: 'swagger@example.com' });
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${base}/docs/`);
    await page.locator('button.authorize').first().click();
    await page.locator('#oauth_username').fill(user.email);
    await page.locator('#oauth_password').fill(user.password);
    const tokenResponse = page.waitForResponse((response) => response.url().endsWith('/token'));
    await page.locator('.auth-btn-wrapper button.authorize').first().click();
    expect((await tokenResponse).status()).toBe(200);
    await expect.poll(() => page.locator('.modal-ux').getByText('Authorized').count()).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Close' }).first().click();

    // Swagger UI names operation blocks by tag and operationId.
    const operation = page.locator('#operations-accounts-getUsersMe');
    await operation.locator('.opblock-summary').click();
    // "Try it out" is on by default (uiConfig.tryItOutEnabled), so Execute is there at once.
    await operation.locator('button.execute').click();
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await expect.poll(() => status.textContent(), { timeout: 10_000 }).toContain('200');
    await expect
      .poll(() => operation.locator('.live-responses-table .microlight').first().textContent())
      .toContain(user.email);
    expect(violations).toEqual([]);
    await page.close();
  });

  it('lets a player join a room with "Try it out" and then call the room routes with the cookie', async () => {
    const host = await createUser(app, { email: 'swagger-host@example.com' });
    const login = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `grant_type=password&username=${encodeURIComponent(host.email)}&password=${encodeURIComponent(host.password)}`,
    });
    const room = await app.inject({
      method: 'POST',
      url: '/rooms',
      headers: { authorization: `Bearer ${login.json().access_token}` },
      payload: { name: 'Docs room' },
    });
    const code = room.json().code as string;
    const page = await browser.newPage();
    await page.goto(`${base}/docs/`);

    const join = page.locator('#operations-rooms-postRoomsByCodeJoin');
    await join.locator('.opblock-summary').click();
    await join.locator('input[placeholder="code"]').fill(code);
    await join.locator('textarea.body-param__text').fill(JSON.stringify({ player: 'Docs Reader' }));
    await join.locator('button.execute').click();
    const joinStatus = join.locator('.live-responses-table .response .response-col_status').first();
    await expect.poll(() => joinStatus.textContent(), { timeout: 10_000 }).toContain('201');

    const view = page.locator('#operations-rooms-getRoomsByCode');
    await view.locator('.opblock-summary').click();
    await view.locator('input[placeholder="code"]').fill(code);
    await view.locator('button.execute').click();
    const viewStatus = view.locator('.live-responses-table .response .response-col_status').first();
    await expect.poll(() => viewStatus.textContent(), { timeout: 10_000 }).toContain('200');
    await expect
      .poll(() => view.locator('.live-responses-table .microlight').first().textContent())
      .toContain('Docs Reader');
    await page.close();
  });
});
