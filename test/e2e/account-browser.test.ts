/**
 * The account lifecycle in a real browser against a real listening server that mails through a
 * real SMTP server (started here): forgot password → the mail → its link → a new password → log
 * in; confirming and changing the address through the links mailed from the account page; the
 * account page's sessions; a verification link opened signed out (the account's password, or a
 * new one that takes the account over); and an admin disabling a user from the console, after
 * which the user's session no longer works.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */

import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { createUser, PASSWORD, uniqueEmail } from '../support/accounts.js';
import { launchChromium } from '../support/browser.js';
import { type SmtpSink, startSmtpSink } from '../support/smtp-sink.js';

const UI_TIMEOUT = 15_000;
const NEW_PASSWORD = 'a completely new passphrase';

let app: FastifyInstance | undefined;
let browser: Browser | undefined;
let sink: SmtpSink | undefined;
let baseUrl = '';
const contexts: BrowserContext[] = [];
/** Uncaught exceptions and CSP violations, from every page: each one fails the test. */
const pageFailures: string[] = [];

/** A port nobody listens on right now, so PUBLIC_URL can name the server before it listens. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  sink = await startSmtpSink();
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  // Mailed links are built from PUBLIC_URL only: this server's address.
  app = await buildTestServer({ smtpUrl: sink.url, mailFrom: 'gh@example.com', publicUrl: baseUrl });
  await app.listen({ port, host: '127.0.0.1' });
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.allSettled(contexts.map((context) => context.close()));
  await browser?.close();
  await app?.close();
  await sink?.close();
});

/** A page in a fresh browser context (its own cookies: another person). */
async function openPerson(path: string): Promise<Page> {
  if (browser === undefined) throw new Error('browser not started');
  const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  page.on('pageerror', (error) => pageFailures.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      pageFailures.push(`CSP: ${message.text()}`);
    }
  });
  await page.goto(`${baseUrl}/${path}`);
  return page;
}

async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/#/login`);
  await page.getByTestId('email-input').fill(email);
  await page.getByTestId('password-input').fill(password);
  await page.getByTestId('login-button').click();
  await expect.poll(() => page.getByTestId('nav-user').textContent(), { timeout: UI_TIMEOUT }).toBe(email);
}

/** The first link to this server in a mail's text. */
function firstLink(text: string | undefined): string {
  const match = /https?:\/\/\S+/.exec(text ?? '');
  if (match === null) throw new Error(`no link in: ${text}`);
  return match[0];
}

describe('account lifecycle in a browser', () => {
  it('forgot password → mail → reset → log in with the new password', async () => {
    if (sink === undefined) throw new Error('no SMTP sink');
    const owner = await createUser(app as FastifyInstance, { email: uniqueEmail('browser-reset') });
    const page = await openPerson('#/login');
    await page.getByTestId('forgot-link').click();
    await page.getByTestId('forgot-email-input').fill(owner.email);
    await page.getByTestId('forgot-button').click();
    await expect
      .poll(() => page.getByTestId('forgot-sent').textContent(), { timeout: UI_TIMEOUT })
      .toContain(owner.email);

    const mail = await sink.waitForMail(owner.email, 'Reset your password');
    const link = firstLink(mail.text);
    expect(link.startsWith(`${baseUrl}/#/reset-password?token=`)).toBe(true);
    await page.goto(link);
    await page.getByTestId('new-password-input').fill(NEW_PASSWORD);
    await page.getByTestId('reset-button').click();
    await expect
      .poll(() => page.getByTestId('notice').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/password was changed/);

    // The link worked once: opening it again is refused.
    await page.goto(link);
    await page.getByTestId('new-password-input').fill('yet another new passphrase');
    await page.getByTestId('reset-button').click();
    await expect
      .poll(() => page.getByTestId('form-error').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/invalid, used or expired/);

    await logIn(page, owner.email, NEW_PASSWORD);
    expect(pageFailures).toEqual([]);
  });

  it('confirms the address and changes it through mailed links opened from the account page', async () => {
    if (sink === undefined) throw new Error('no SMTP sink');
    const user = await createUser(app as FastifyInstance, { email: uniqueEmail('browser-links') });
    const page = await openPerson('#/login');
    await logIn(page, user.email, PASSWORD);
    await page.getByTestId('nav-user').click();
    await expect.poll(() => page.getByTestId('email-verified').textContent()).toBe('not confirmed');
    await page.getByTestId('send-verification').click();
    const verifyMail = await sink.waitForMail(user.email, 'Confirm your email address');
    await page.goto(firstLink(verifyMail.text));
    await page.getByTestId('confirm-link-button').click();
    await expect
      .poll(() => page.getByTestId('notice').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/confirmed/);
    await expect.poll(() => page.getByTestId('email-verified').textContent()).toBe('confirmed');

    const newEmail = uniqueEmail('browser-moved');
    await page.getByTestId('new-email-input').fill(newEmail);
    await page.getByTestId('email-current-password-input').fill(PASSWORD);
    await page.getByTestId('change-email-button').click();
    await expect
      .poll(() => page.getByTestId('email-status').textContent(), { timeout: UI_TIMEOUT })
      .toContain(newEmail);
    const confirm = await sink.waitForMail(newEmail);
    await sink.waitForMail(user.email, 'Your email address is about to change');
    await page.goto(firstLink(confirm.text));
    await page.getByTestId('confirm-link-button').click();
    await expect
      .poll(() => page.getByTestId('nav-user').textContent(), { timeout: UI_TIMEOUT })
      .toBe(newEmail);
    expect(pageFailures).toEqual([]);
  });

  // Red-team 2026-12d I9: the link proves the mailbox, not the password, so signed out the page asks
  // for the account's password, or lets the address's owner take the account over with a new one.
  it('a verification link opened signed out asks for the password, or takes the account over with a new one', async () => {
    if (sink === undefined) throw new Error('no SMTP sink');
    const signUp = async (label: string) => {
      const email = uniqueEmail(label);
      const created = await (app as FastifyInstance).inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email, password: PASSWORD },
      });
      expect(created.statusCode).toBe(201);
      const mail = await sink?.waitForMail(email, 'Confirm your email address');
      return { email, link: firstLink(mail?.text) };
    };

    // Signed up on another device: confirmed here with the account's password.
    const mine = await signUp('browser-elsewhere');
    const page = await openPerson('#/login');
    await page.goto(mine.link);
    await page.getByTestId('confirm-link-button').click();
    await page.getByTestId('link-needs-password').waitFor();
    await page.getByTestId('link-current-password-input').fill('not the password at all');
    await page.getByTestId('link-current-password-button').click();
    await expect
      .poll(() => page.getByTestId('form-error').first().textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/password is wrong/);
    await page.getByTestId('link-current-password-input').fill(PASSWORD);
    await page.getByTestId('link-current-password-button').click();
    await expect
      .poll(() => page.getByTestId('notice').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/confirmed/);
    await logIn(page, mine.email, PASSWORD);

    // Someone else signed up with this address: its owner takes the account over.
    const squatted = await signUp('browser-squatted');
    const owner = await openPerson('#/login');
    await owner.goto(squatted.link);
    await owner.getByTestId('confirm-link-button').click();
    await owner.getByTestId('link-new-password-input').fill(NEW_PASSWORD);
    await owner.getByTestId('link-new-password-button').click();
    await expect
      .poll(() => owner.getByTestId('notice').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/account is yours/);
    await logIn(owner, squatted.email, NEW_PASSWORD);
    const stranger = await (app as FastifyInstance).inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'password',
        username: squatted.email,
        password: PASSWORD,
      }).toString(),
    });
    expect(stranger.statusCode).toBe(400);
    expect(pageFailures).toEqual([]);
  });

  it('a tab whose session was signed out in another asks for a login that returns to it (web review W1)', async () => {
    const user = await createUser(app as FastifyInstance, { email: uniqueEmail('browser-tabs') });
    const first = await openPerson('#/login');
    await logIn(first, user.email, PASSWORD);
    const second = await first.context().newPage();
    second.setDefaultTimeout(UI_TIMEOUT);
    await second.goto(`${baseUrl}/#/account`);
    await second.getByTestId('profile-save').waitFor();

    await first.getByTestId('logout-button').click();
    await first.getByTestId('nav-login').waitFor();
    // The second tab still shows the account; its next action finds the session gone.
    await second.getByTestId('profile-save').click();
    await expect
      .poll(() => second.getByTestId('notice').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/signed out/);
    expect(second.url()).toBe(`${baseUrl}/#/login?next=${encodeURIComponent('/account')}`);
    await second.getByTestId('nav-login').waitFor();
    expect(await second.getByTestId('nav-user').count()).toBe(0);
    // Logging in there returns to the page it was on.
    await second.getByTestId('email-input').fill(user.email);
    await second.getByTestId('password-input').fill(PASSWORD);
    await second.getByTestId('login-button').click();
    await expect.poll(() => second.url(), { timeout: UI_TIMEOUT }).toBe(`${baseUrl}/#/account`);
    expect(pageFailures).toEqual([]);
  });

  it('an account page whose sign-in check fails says so and tries again, rather than ask to log in (web review W5)', async () => {
    const user = await createUser(app as FastifyInstance, { email: uniqueEmail('browser-outage') });
    const page = await openPerson('#/login');
    await logIn(page, user.email, PASSWORD);
    const outage = (route: Route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/problem+json',
        body: JSON.stringify({
          status: 503,
          code: 'DATABASE_UNAVAILABLE',
          title: 'Service Unavailable',
          detail: 'The database is unavailable.',
        }),
      });
    await page.route('**/users/me', outage);
    await page.goto(`${baseUrl}/#/account`);
    await page.reload();
    await expect
      .poll(() => page.getByTestId('session-unknown').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/Could not check whether you are logged in/);
    expect(await page.getByText('Please log in first').count()).toBe(0);
    await page.unroute('**/users/me', outage);
    await page.getByTestId('session-retry').click();
    await page.getByTestId('profile-save').waitFor();
    expect(await page.getByTestId('nav-user').textContent()).toBe(user.email);
    expect(pageFailures).toEqual([]);
  });

  it('a sign-in check that failed once does not keep account pages on "cannot reach" after a login (review W-a)', async () => {
    const user = await createUser(app as FastifyInstance, { email: uniqueEmail('browser-blip') });
    const page = await openPerson('');
    let answered = 0;
    // One blip: the start-up's GET /users/me answers 503, every later one goes through.
    await page.route('**/users/me', (route) =>
      answered++ === 0
        ? route.fulfill({
            status: 503,
            contentType: 'application/problem+json',
            body: JSON.stringify({ status: 503, code: 'DATABASE_UNAVAILABLE', title: 'Service Unavailable' }),
          })
        : route.continue(),
    );
    await page.goto(`${baseUrl}/#/login?next=${encodeURIComponent('/account')}`);
    await page.reload();
    await page.getByTestId('email-input').fill(user.email);
    await page.getByTestId('password-input').fill(PASSWORD);
    await page.getByTestId('login-button').click();
    await expect.poll(() => page.url(), { timeout: UI_TIMEOUT }).toBe(`${baseUrl}/#/account`);
    await page.getByTestId('profile-save').waitFor();
    expect(await page.getByTestId('session-unknown').count()).toBe(0);
    expect(await page.locator('#app-error').count()).toBe(0);
    expect(pageFailures).toEqual([]);
  });

  it('an admin disables a user from the console, and the user’s session stops working', async () => {
    const admin = await createUser(app as FastifyInstance, {
      email: uniqueEmail('browser-admin'),
      role: 'admin',
    });
    const user = await createUser(app as FastifyInstance, { email: uniqueEmail('browser-user') });

    const userPage = await openPerson('#/login');
    await logIn(userPage, user.email, PASSWORD);
    await userPage.goto(`${baseUrl}/#/account`);
    await userPage.getByTestId('session-current').waitFor();
    expect(await userPage.evaluate(() => fetch('/users/me').then((response) => response.status))).toBe(200);

    const adminPage = await openPerson('#/login');
    await logIn(adminPage, admin.email, PASSWORD);
    await adminPage.getByTestId('nav-admin').click();
    await adminPage.getByTestId('user-search-input').fill(user.email);
    await adminPage.getByTestId('user-search-button').click();
    const row = adminPage.locator(`[data-testid="user-row"][data-email="${user.email}"]`);
    await row.getByTestId('user-toggle-active').click();
    await expect
      .poll(() => row.getByTestId('user-state').textContent(), { timeout: UI_TIMEOUT })
      .toBe('disabled');

    // The user's very next request is refused, and the page shows them signed out.
    expect(await userPage.evaluate(() => fetch('/users/me').then((response) => response.status))).toBe(401);
    await userPage.reload();
    await userPage.getByTestId('nav-login').waitFor();
    expect(pageFailures).toEqual([]);
  });
});
