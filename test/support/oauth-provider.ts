import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { form, postToken } from './accounts.js';
import type { Browser } from './cookie-browser.js';

/** The URL the provider test servers are built with (`publicUrl` and `issuer`). */
export const PUBLIC_URL = 'https://auth.example.test';
/** The redirect URI the test clients register. */
export const REDIRECT = 'https://app.example/callback';
/** The post-logout redirect URI the test clients register. */
export const LOGOUT_REDIRECT = 'https://app.example/signed-out';
/** The content type of the provider's HTML forms. */
export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A fresh PKCE pair (RFC 7636, S256). */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The `Location` of a 303, resolved against {@link PUBLIC_URL}. */
export function locationOf(response: LightMyRequestResponse): URL {
  expect(response.statusCode, response.body).toBe(303);
  return new URL(String(response.headers.location), PUBLIC_URL);
}

/** The value of a hidden form field on one of the provider's pages, unescaped. */
export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (match?.[1] === undefined) throw new Error(`no ${name} field in ${html}`);
  return match[1].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'");
}

/** `/authorize?…` with the parameters that are defined. */
export function authorizeUrl(params: Record<string, string | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) query.append(key, value);
  return `/authorize?${query.toString()}`;
}

const CONSENT_FIELDS = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'csrf_token',
];

/**
 * Drives a signed-in `browser` through `/authorize` (and its consent page when shown) and returns
 * where the provider sent it: the redirect URI with `code`, `state` (`st`) and `iss`.
 */
export async function authorizationResponse(
  app: FastifyInstance,
  browser: Browser,
  client: OAuthClient,
  challenge: string,
  scope = 'openid profile email',
): Promise<URL> {
  return locationOf(await authorizationAnswer(app, browser, client, challenge, scope));
}

/**
 * {@link authorizationResponse}'s last answer itself: the redirect, or the approval's error (a
 * consent that could not be saved answers 503).
 */
export async function authorizationAnswer(
  app: FastifyInstance,
  browser: Browser,
  client: OAuthClient,
  challenge: string,
  scope = 'openid profile email',
): Promise<LightMyRequestResponse> {
  const url = authorizeUrl({
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: REDIRECT,
    scope,
    state: 'st',
    nonce: 'n',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  let answer = await browser.request('GET', url);
  if (answer.statusCode === 200) {
    const body: Record<string, string> = { decision: 'allow', remember: 'on' };
    for (const name of CONSENT_FIELDS) body[name] = hiddenField(answer.body, name);
    answer = browser.absorb(
      await app.inject({
        method: 'POST',
        url: '/authorize',
        headers: { ...FORM, cookie: browser.cookieHeader() },
        payload: form(body),
      }),
    );
  }
  return answer;
}

/** Exchanges `code` at `/token` the way `client` would (PKCE `verifier`, the test redirect URI). */
export function exchangeCode(app: FastifyInstance, client: OAuthClient, code: string, verifier: string) {
  return postToken(app, {
    grant_type: 'authorization_code',
    client_id: client.clientId,
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
  });
}

/** The whole code flow for tests about what comes after: the token response's JSON. */
export async function tokensFor(
  app: FastifyInstance,
  browser: Browser,
  client: OAuthClient,
  scope = 'openid profile email',
): Promise<{ access_token: string; refresh_token: string; id_token: string }> {
  const { verifier, challenge } = pkce();
  const location = await authorizationResponse(app, browser, client, challenge, scope);
  const response = await exchangeCode(app, client, String(location.searchParams.get('code')), verifier);
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}
