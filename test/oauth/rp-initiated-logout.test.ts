import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { createRpInitiatedLogout, type RpInitiatedLogoutDeps } from '../../src/oauth/rp-initiated-logout.js';

const CLIENT: OAuthClient = {
  clientId: 'spa',
  name: 'SPA',
  type: 'public',
  redirectUris: ['https://app.example/cb'],
  postLogoutRedirectUris: ['https://app.example/out'],
  grantTypes: ['authorization_code', 'refresh_token'],
  scopes: ['openid'],
  createdAt: 0,
  disabled: false,
  idTokenSignedResponseAlg: 'ES256',
};

/** A token whose claims say what the verifier below returns (the fake keyring trusts it). */
async function hintFor(claims: Record<string, unknown>): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(privateKey);
}

function logoutWith(overrides: Partial<RpInitiatedLogoutDeps> = {}) {
  const revoked: string[][] = [];
  const deps: RpInitiatedLogoutDeps = {
    clients: { find: async (id) => (id === CLIENT.clientId ? CLIENT : undefined) },
    grants: { sessionsOfClient: async (_client, user) => (user === 'u1' ? ['s1', 's2'] : ['s9']) },
    sessions: {
      revokeSessions: async (ids) => {
        revoked.push([...ids]);
        return ids.length;
      },
    },
    idTokenKeys: {
      keyringFor: async () => ({
        verify: async (token: string) =>
          JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()),
      }),
    },
    expiredHintGraceSeconds: 3600,
    clock: () => 1_000_000,
    ...overrides,
  };
  return { logout: createRpInitiatedLogout(deps), revoked };
}

describe('RP-initiated logout rules', () => {
  it('ends only the session the hint names when it is the browser person’s, and asks nothing then', async () => {
    const { logout, revoked } = logoutWith();
    const request = await logout.check({ idTokenHint: await hintFor({ sub: 'u1', sid: 's2', aud: 'spa' }) });
    expect(request.hint).toEqual({ userId: 'u1', sessionId: 's2', clientId: 'spa' });
    const browser = { userId: 'u1', sessionId: 'cookie' };
    expect(await logout.needsNoConfirmation(request, browser)).toBe(true);
    expect(await logout.endClientSessions(request, browser)).toBe(1);
    expect(revoked).toEqual([['s2']]);
  });

  it('never ends another person’s session: with their hint, the browser person’s sessions with the client end', async () => {
    const { logout, revoked } = logoutWith();
    const request = await logout.check({ idTokenHint: await hintFor({ sub: 'u2', sid: 's9', aud: 'spa' }) });
    const browser = { userId: 'u1', sessionId: 'cookie' };
    expect(await logout.needsNoConfirmation(request, browser)).toBe(false);
    await logout.endClientSessions(request, browser);
    expect(revoked).toEqual([['s1', 's2']]);
  });

  it('asks when the named session is not live with that client', async () => {
    const { logout, revoked } = logoutWith();
    const request = await logout.check({
      idTokenHint: await hintFor({ sub: 'u1', sid: 'gone', aud: 'spa' }),
    });
    const browser = { userId: 'u1', sessionId: 'cookie' };
    expect(await logout.needsNoConfirmation(request, browser)).toBe(false);
    expect(await logout.endClientSessions(request, browser)).toBe(0);
    expect(revoked).toEqual([]);
  });

  it('ignores a hint whose verification fails, one with a list audience, and one of an unknown client', async () => {
    const refusing = logoutWith({
      idTokenKeys: {
        keyringFor: async () => ({
          verify: async () => {
            throw new Error('signature verification failed');
          },
        }),
      },
    });
    const bad = await refusing.logout.check({
      idTokenHint: await hintFor({ sub: 'u1', sid: 's1', aud: 'spa' }),
      postLogoutRedirectUri: 'https://app.example/out',
    });
    expect(bad.hint).toBeUndefined();
    expect(bad.redirectTo).toBeUndefined();
    expect(bad.ignored.map((item) => item.code)).toEqual(['INVALID_ID_TOKEN_HINT', 'INVALID_REDIRECT_URI']);
    const { logout } = logoutWith();
    const list = await logout.check({ idTokenHint: await hintFor({ sub: 'u1', sid: 's1', aud: ['spa'] }) });
    expect(list.hint).toBeUndefined();
    const removed = await logout.check({ idTokenHint: await hintFor({ sub: 'u1', sid: 's1', aud: 'gone' }) });
    expect(removed.hint).toBeUndefined();
    expect(removed.ignored).toMatchObject([{ parameter: 'id_token_hint', code: 'UNKNOWN_CLIENT' }]);
  });

  it('passes the expiry grace to the keyring, and lets a database failure loading it propagate', async () => {
    let grace: number | undefined;
    const { logout } = logoutWith({
      idTokenKeys: {
        keyringFor: async () => ({
          verify: async (token: string, expect: { expiredGraceSeconds?: number }) => {
            grace = expect.expiredGraceSeconds;
            return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
          },
        }),
      },
    });
    await logout.check({ idTokenHint: await hintFor({ sub: 'u1', sid: 's1', aud: 'spa' }) });
    expect(grace).toBe(3600);
    const down = logoutWith({
      idTokenKeys: {
        keyringFor: async () => {
          throw new Error('connect ECONNREFUSED');
        },
      },
    });
    await expect(
      down.logout.check({ idTokenHint: await hintFor({ sub: 'u1', sid: 's1', aud: 'spa' }) }),
    ).rejects.toThrow('ECONNREFUSED');
  });

  it('carries state to a registered URI only, compared exactly', async () => {
    const { logout } = logoutWith();
    const ok = await logout.check({
      clientId: 'spa',
      postLogoutRedirectUri: 'https://app.example/out',
      state: 'a b',
    });
    expect(ok.redirectTo).toBe('https://app.example/out?state=a+b');
    for (const uri of ['https://app.example/out/', 'https://APP.example/out', 'https://app.example/out#x']) {
      const refused = await logout.check({ clientId: 'spa', postLogoutRedirectUri: uri, state: 's' });
      expect(refused.redirectTo, uri).toBeUndefined();
    }
  });
});
