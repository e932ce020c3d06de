import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { BrowserContext, Browser as Chromium, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { cookiesOf, PASSWORD } from './accounts.js';
import { listenOnLoopback } from './listen.js';

/** Methods the jar speaks. */
export type Method = 'GET' | 'POST' | 'DELETE';

/**
 * A cookie jar that honours `Path` (RFC 6265 §5.1.4) and `Max-Age=0`, which is what makes one
 * browser able to hold the cookies of several rooms at once.
 */
export class Browser {
  readonly cookies = new Map<string, { value: string; path: string }>();
  constructor(private readonly app: FastifyInstance) {}

  cookieHeader(url: string): string {
    const path = url.split('?')[0] ?? '/';
    const matches = (cookiePath: string) =>
      path === cookiePath ||
      (path.startsWith(cookiePath) && (cookiePath.endsWith('/') || path[cookiePath.length] === '/'));
    return [...this.cookies]
      .filter(([, cookie]) => matches(cookie.path))
      .map(([name, cookie]) => `${name}=${cookie.value}`)
      .join('; ');
  }

  absorb(response: LightMyRequestResponse): LightMyRequestResponse {
    // cookiesOf lower-cases attributes, but paths are case-sensitive: read Path from the raw line.
    const lines = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
    for (const [name, { value, attributes }] of cookiesOf(response)) {
      const line = lines.find((l) => l.startsWith(`${name}=`)) ?? '';
      const path = /;\s*path=([^;]*)/i.exec(line)?.[1] ?? '/';
      if (attributes.includes('max-age=0') || value === '') this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
    return response;
  }

  async request(
    method: Method,
    url: string,
    options: { headers?: Record<string, string>; payload?: object } = {},
  ) {
    const response = await this.app.inject({
      method,
      url,
      headers: { cookie: this.cookieHeader(url), ...options.headers },
      payload: options.payload,
    });
    return this.absorb(response);
  }

  async csrf(): Promise<string> {
    return (await this.request('GET', '/auth/csrf')).json().csrf_token;
  }

  async login(email: string): Promise<void> {
    const token = await this.csrf();
    const response = await this.request('POST', '/auth/login', {
      headers: { 'x-csrf-token': token },
      payload: { email, password: PASSWORD },
    });
    expect(response.statusCode).toBe(204);
  }

  join(code: string, player: string) {
    return this.request('POST', `/rooms/${code}/join`, { payload: { player } });
  }
}

// --- Dicery in a real browser (test/e2e/dicery-*.test.ts) -------------------------------------

/** How long a page may take to show something (auto-waiting, not a sleep). */
export const UI_TIMEOUT = 15_000;

/** `expect.poll` with a timeout that fits a browser round trip (its default is 1 s). */
export function eventually<T>(read: () => Promise<T>): ReturnType<typeof expect.poll<T>> {
  return expect.poll(read, { timeout: UI_TIMEOUT, interval: 50 });
}

/** The phone the layout rules are written for, and a desktop window. */
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

/** A real server on a free port and one headless Chromium, for a suite of Dicery browser tests. */
export interface DiceryBrowserSuite {
  /** `http://127.0.0.1:<port>` once the suite started. */
  baseUrl(): string;
  /** A fresh browser context: its own cookies, like another person's device. */
  newPerson(viewport?: { width: number; height: number }): Promise<BrowserContext>;
  /**
   * A page of `context` at `path` (`#/…` on the server, or a full URL); its uncaught exceptions
   * and CSP violations go to {@link DiceryBrowserSuite.pageFailures}.
   */
  openPage(context: BrowserContext, path: string): Promise<Page>;
  /** {@link DiceryBrowserSuite.openPage} in a {@link DiceryBrowserSuite.newPerson}. */
  openPerson(viewport: { width: number; height: number }, path: string): Promise<Page>;
  /** Uncaught exceptions and CSP violations, from every page: a test expects it empty at its end. */
  readonly pageFailures: string[];
}

/**
 * Starts the reference server (default, Secure cookies: Chromium treats http://127.0.0.1 as a
 * potentially trustworthy origin) and Chromium before the suite's tests, and closes every context,
 * the browser and the server after them. Call at the top level of a test file.
 */
export function useDiceryBrowser(): DiceryBrowserSuite {
  let app: FastifyInstance | undefined;
  let chromium: Chromium | undefined;
  let baseUrl = '';
  const contexts: BrowserContext[] = [];
  const pageFailures: string[] = [];

  beforeAll(async () => {
    app = await buildTestServer();
    baseUrl = await listenOnLoopback(app);
    // Loaded here, not at the top: the inject tests that use this file's cookie jar need no browser.
    const { launchChromium } = await import('./browser.js');
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await Promise.allSettled(contexts.map((context) => context.close()));
    await chromium?.close();
    await app?.close();
  });

  const newPerson = async (viewport?: { width: number; height: number }) => {
    if (chromium === undefined) throw new Error('browser not started');
    const context = await chromium.newContext({
      ...(viewport === undefined ? {} : { viewport }),
      acceptDownloads: true,
    });
    contexts.push(context);
    return context;
  };
  const openPage = async (context: BrowserContext, path: string) => {
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('pageerror', (error) => pageFailures.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
        pageFailures.push(`CSP: ${message.text()}`);
      }
    });
    await page.goto(path.startsWith('http') ? path : `${baseUrl}/${path}`);
    return page;
  };
  return {
    baseUrl: () => baseUrl,
    newPerson,
    openPage,
    openPerson: async (viewport, path) => openPage(await newPerson(viewport), path),
    pageFailures,
  };
}

/** Joins room `code` as `name` from the join page, and waits for the lobby's roll form. */
export async function joinRoom(page: Page, code: string, name: string): Promise<void> {
  await page.getByTestId('join-code-input').fill(code);
  await page.getByTestId('player-name-input').fill(name);
  await page.getByTestId('join-button').click();
  await page.getByTestId('roll-form').waitFor();
}

/**
 * On a page at `#/signup`: signs a new host up (Hannah Host), creates room `roomName`, opens its
 * lobby and returns its code.
 */
export async function signUpAndOpenRoom(page: Page, roomName: string): Promise<string> {
  await page.getByTestId('email-input').fill(`host-${randomUUID()}@example.com`);
  await page.getByTestId('full-name-input').fill('Hannah Host');
  await page.getByTestId('password-input').fill('plum-Tiger-42-lantern');
  await page.getByTestId('signup-button').click();
  await page.getByTestId('welcome-heading').waitFor();
  await page.getByTestId('room-name-input').fill(roomName);
  await page.getByTestId('create-room-button').click();
  const code = (await page.getByTestId('room-code').textContent())?.trim() ?? '';
  await page.getByTestId('lobby-link').click();
  await eventually(() => page.getByTestId('room-name').textContent()).toBe(roomName);
  return code;
}
