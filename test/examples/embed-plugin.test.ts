import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appScopes, buildApp } from '../../examples/embed-plugin.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { testConfig } from '../../src/testing.js';
import { bearerFor, createAccount, requestToken, type SignedIn, signIn } from '../support/accounts.js';

describe('examples/embed-plugin.ts', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;

  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig(), { scopes: appScopes });
    app = await buildApp(gatehouse);
  });

  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
  });

  const get = (url: string, who?: SignedIn) =>
    app.inject({ method: 'GET', url, headers: who?.headers ?? {} });

  it('stays a minimal example (≤ 30 lines)', () => {
    const source = readFileSync(new URL('../../examples/embed-plugin.ts', import.meta.url), 'utf8');
    expect(source.trimEnd().split('\n').length).toBeLessThanOrEqual(30);
  });

  it('serves Gatehouse’s own routes on the app’s instance', async () => {
    const bob = await signIn(app, 'user');
    expect((await get('/users/me', bob)).json()).toMatchObject({ id: bob.user.id, role: 'user' });
  });

  it('protects its own route by role: 401 signed out, 403 for a user, 200 for an admin', async () => {
    const signedOut = await get('/reports');
    expect(signedOut.statusCode).toBe(401);
    expect(signedOut.json().code).toBe('UNAUTHENTICATED');

    const user = await get('/reports', await signIn(app, 'user'));
    expect(user.statusCode).toBe(403);
    expect(user.json().code).toBe('FORBIDDEN');

    const ann = await signIn(app, 'admin');
    const admin = await get('/reports', ann);
    expect(admin.statusCode).toBe(200);
    expect(admin.json()).toEqual({ requestedBy: ann.user.email });
  });

  it('protects its own route by its own scope: 200 with lookbook:read, 403 insufficient_scope without', async () => {
    const bob = await createAccount(app, 'user');
    expect((await get('/lookbook', await bearerFor(app, bob))).json()).toEqual({ looks: [] });
    const narrow = await get('/lookbook', await bearerFor(app, bob, 'me'));
    expect(narrow.statusCode).toBe(403);
    expect(narrow.json().code).toBe('INSUFFICIENT_SCOPE');
    expect(narrow.headers['www-authenticate']).toContain('error="insufficient_scope", scope="lookbook:read"');
  });

  it('offers its scope on /token and in the OAuth metadata, and no reference-app scope', async () => {
    const bob = await createAccount(app, 'user');
    const token = await requestToken(app, bob.email);
    expect(token.json().scope).toBe('me lookbook:read');
    const metadata = (await get('/.well-known/oauth-authorization-server')).json();
    expect(metadata.scopes_supported).toContain('lookbook:read');
    expect(metadata.scopes_supported).not.toContain('clothes:read');
  });
});
