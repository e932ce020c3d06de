/**
 * Second factors in a real browser against a real server (issue 13): passkey registration and
 * passwordless sign-in through the web UI with Chromium's DevTools virtual authenticator
 * (`WebAuthn.enable`, `WebAuthn.addVirtualAuthenticator` over a CDP session), re-authentication with
 * the passkey once the sign-in is older than STEP_UP_MAX_AGE, and TOTP enrolment through the UI
 * (QR code, recovery-code download) followed by a sign-in through the second-factor prompt, the
 * codes computed here with the same TOTP library (otpauth).
 *
 * The server's PUBLIC_URL is `http://localhost:<port>`: an IP address cannot be a WebAuthn
 * relying-party id, and pages opened at 127.0.0.1 are redirected there.
 */
import type { FastifyInstance } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { createUser } from '../support/accounts.js';
import { launchChromium, runBrowserTests } from '../support/browser.js';
import { freePort } from '../support/private-postgres.js';

const UI_TIMEOUT = 15_000;

describe.runIf(runBrowserTests)('second factors in a real browser', () => {
  let app: FastifyInstance;
  let browser: Browser;
  let clock: TestClock;
  let base: string;
  let port: number;
  const contexts: BrowserContext[] = [];
  const pageFailures: string[] = [];

  beforeAll(async () => {
    port = await freePort();
    base = `http://localhost:${port}`;
    clock = createTestClock();
    app = await buildTestServer({ port, publicUrl: base }, { clock, scheduler: clock });
    await app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await Promise.allSettled(contexts.map((context) => context.close()));
    await browser?.close();
    await app?.close();
  });

  async function openPage(path: string): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('pageerror', (error) => pageFailures.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
        pageFailures.push(`CSP: ${message.text()}`);
      }
    });
    await page.goto(`${base}/${path}`);
    return { page, context };
  }

  /** A platform authenticator that holds discoverable credentials and always verifies its user. */
  async function addVirtualAuthenticator(context: BrowserContext, page: Page) {
    const cdp: CDPSession = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, authenticatorId };
  }

  async function logInWithPassword(page: Page, email: string, password: string) {
    await page.goto(`${base}/#/login`);
    await page.getByTestId('email-input').fill(email);
    await page.getByTestId('password-input').fill(password);
    await page.getByTestId('login-button').click();
  }

  it('a page opened at 127.0.0.1 lands on PUBLIC_URL (localhost), where passkeys work', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/#/login`);
    expect(new URL(page.url()).host).toBe(`localhost:${port}`);
    // The fragment (the UI's route) survives the redirect.
    await page.getByTestId('login-form').waitFor();
    // The API still answers on any host.
    const api = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(api.status).toBe(200);
  });

  it('registers a passkey from the security page, signs in with it and no password, and re-authenticates with it', async () => {
    const user = await createUser(app, { email: 'passkey-owner@example.com', verified: true });
    const { page, context } = await openPage('#/login');
    const { cdp, authenticatorId } = await addVirtualAuthenticator(context, page);

    await logInWithPassword(page, user.email, user.password);
    await page.getByTestId('nav-user').waitFor();
    await page.getByTestId('nav-security').click();
    await page.getByTestId('passkeys-empty').waitFor();
    await page.getByTestId('passkey-add-button').click();
    await expect.poll(() => page.getByTestId('passkey-item').count(), { timeout: UI_TIMEOUT }).toBe(1);
    // This session signed in with the password alone: now that the account holds a passkey,
    // changing its factors asks for the passkey, not the password (NIST 800-63B §6.1.2.1).
    await page.getByTestId('passkey-remove-button').click();
    await page.getByTestId('step-up').waitFor();
    expect(await page.getByTestId('step-up-password').count()).toBe(0);
    await page.getByTestId('step-up-cancel').click();
    expect(await page.getByTestId('passkey-item').count()).toBe(1);

    // The authenticator holds one discoverable credential for rp id "localhost", user handle = account id.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]?.isResidentCredential).toBe(true);
    expect(credentials[0]?.rpId).toBe('localhost');
    expect(Buffer.from(credentials[0]?.userHandle ?? '', 'base64').toString('utf8')).toBe(user.id);
    const [stored] = await gatehouseCore(app.gatehouse).passkeys.list(user.id);
    expect(stored).toMatchObject({ userId: user.id, deviceType: 'singleDevice', backedUp: false });

    // Sign out, then sign in with the passkey alone: no email, no password.
    await page.getByTestId('logout-button').click();
    await page.getByTestId('nav-login').waitFor();
    await page.goto(`${base}/#/login`);
    await page.getByTestId('passkey-login-button').click();
    await expect
      .poll(() => page.getByTestId('nav-user').textContent(), { timeout: UI_TIMEOUT })
      .toBe(user.email);
    const me = await page.evaluate(async () => (await fetch('/users/me')).status);
    expect(me).toBe(200);
    // The session records how: RFC 8176 pop + user + mfa, the authenticator's counter moved on.
    const sessions = await gatehouseCore(app.gatehouse).sessions.listSessions(user.id);
    const newest = sessions.sort((a, b) => b.createdAt - a.createdAt)[0];
    expect(newest?.amr).toEqual(['pop', 'user', 'mfa']);
    const [used] = await gatehouseCore(app.gatehouse).passkeys.list(user.id);
    expect(used?.lastUsedAt).not.toBeNull();
    const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(used?.counter).toBe(after.credentials[0]?.signCount);

    // Later than STEP_UP_MAX_AGE: removing the passkey asks "confirm it's you"; the passkey does it.
    clock.advance((gatehouseCore(app.gatehouse).config.stepUpMaxAge + 1) * 1000);
    await page.getByTestId('nav-security').click();
    await page.getByTestId('passkey-item').waitFor();
    await page.getByTestId('passkey-remove-button').click();
    await page.getByTestId('step-up').waitFor();
    await page.getByTestId('step-up-passkey-button').click();
    await page.getByTestId('passkeys-empty').waitFor();
    expect(await gatehouseCore(app.gatehouse).passkeys.list(user.id)).toHaveLength(0);
    expect(pageFailures).toEqual([]);
  });

  it('a passkey-only account changes its password on the account page after confirming with the passkey', async () => {
    const user = await createUser(app, { email: 'passkey-password@example.com', verified: true });
    const { page, context } = await openPage('#/login');
    await addVirtualAuthenticator(context, page);
    await logInWithPassword(page, user.email, user.password);
    await page.getByTestId('nav-user').waitFor();
    await page.goto(`${base}/#/account/security`);
    await page.getByTestId('passkeys-empty').waitFor();
    await page.getByTestId('passkey-add-button').click();
    await page.getByTestId('passkey-item').waitFor();

    // Signed in with the password alone: the server wants the passkey before a new password
    // (STEP_UP_REQUIRED), and the account page asks for it instead of showing the API's text.
    const newPassword = 'a brand new passphrase for this account';
    await page.goto(`${base}/#/account`);
    const section = page.getByTestId('account-password');
    await section.getByTestId('current-password-input').fill(user.password);
    await section.getByTestId('change-password-input').fill(newPassword);
    await section.getByTestId('change-password-button').click();
    const stepUp = section.getByTestId('step-up');
    await stepUp.waitFor();
    expect(await stepUp.getByTestId('step-up-password').count()).toBe(0);
    await stepUp.getByTestId('step-up-passkey-button').click();
    await expect
      .poll(() => section.getByTestId('password-status').textContent(), { timeout: UI_TIMEOUT })
      .toMatch(/password was changed/);
    expect(await stepUp.isHidden()).toBe(true);

    // The new password signs in (a passkey-only account's password still does, alone).
    await page.getByTestId('logout-button').click();
    await page.getByTestId('nav-login').waitFor();
    await logInWithPassword(page, user.email, newPassword);
    await expect
      .poll(() => page.getByTestId('nav-user').textContent(), { timeout: UI_TIMEOUT })
      .toBe(user.email);
    expect(pageFailures).toEqual([]);
  });

  it('sets up an authenticator app through the UI (QR code, recovery codes to download), then signs in with its code', async () => {
    const user = await createUser(app, { email: 'totp-owner@example.com', verified: true });
    const { page } = await openPage('#/login');
    await logInWithPassword(page, user.email, user.password);
    await page.getByTestId('nav-user').waitFor();
    await page.goto(`${base}/#/account/security`);
    await page.getByTestId('totp-start-button').click();
    await page.getByTestId('totp-qr').waitFor();
    // The QR code is an SVG path drawn by DOM calls (no inline style under the CSP).
    expect(await page.getByTestId('totp-qr').locator('path').getAttribute('d')).toMatch(/^M\d+ \d+h1v1h-1z/);
    const secret = (await page.getByTestId('totp-secret').textContent()) ?? '';
    const totp = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
    await page.getByTestId('totp-confirm-code').fill(totp.generate({ timestamp: clock() }));
    await page.getByTestId('totp-confirm-button').click();
    await expect
      .poll(() => page.getByTestId('recovery-codes').locator('li').count(), { timeout: UI_TIMEOUT })
      .toBe(10);
    const download = page.getByTestId('recovery-download');
    expect(await download.getAttribute('download')).toBe('recovery-codes.txt');
    expect(await download.getAttribute('href')).toMatch(/^blob:/);
    const [file] = await Promise.all([page.waitForEvent('download'), download.click()]);
    expect(file.suggestedFilename()).toBe('recovery-codes.txt');

    // With the codes still shown, adding a passkey asks to confirm with the app's code too: the
    // prompt reads the factors now, not the page's copy from before (web review W3, where it asked
    // for the password alone, which the server refused). No passkey button: the account has none.
    await page.getByTestId('passkey-add-button').click();
    await page.getByTestId('step-up-otp').waitFor();
    expect(await page.getByTestId('step-up-password').count()).toBe(1);
    expect(await page.getByTestId('step-up-passkey-button').count()).toBe(0);
    await page.getByTestId('step-up-cancel').click();

    // Sign out and in again: the right password brings the second-factor prompt.
    await page.getByTestId('logout-button').click();
    await page.getByTestId('nav-login').waitFor();
    await logInWithPassword(page, user.email, user.password);
    await page.getByTestId('otp-form').waitFor();
    // The confirming code's step is spent (replay refused): the next step's code signs in.
    clock.advance(30_000);
    await page.getByTestId('otp-input').fill('000000');
    await page.getByTestId('otp-button').click();
    await page.getByTestId('otp-error').waitFor();
    await page.getByTestId('otp-input').fill(totp.generate({ timestamp: clock() }));
    await page.getByTestId('otp-button').click();
    await expect
      .poll(() => page.getByTestId('nav-user').textContent(), { timeout: UI_TIMEOUT })
      .toBe(user.email);
    const sessions = await gatehouseCore(app.gatehouse).sessions.listSessions(user.id);
    const newest = sessions.sort((a, b) => b.createdAt - a.createdAt)[0];
    expect(newest?.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(pageFailures).toEqual([]);
  });
});
