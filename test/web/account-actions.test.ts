import { describe, expect, it, vi } from 'vitest';
import { accountActions, type SessionApi } from '../../web/src/account-actions.js';
import { createAppStore } from '../../web/src/store.js';
import type { User } from '../../web/src/types.js';
import { problemOf } from './fixtures.js';

const hannah: User = {
  id: 'u1',
  email: 'hannah@example.com',
  full_name: null,
  role: 'user',
  is_active: true,
  email_verified: true,
  created_at: '2026-01-01T00:00:00.000Z',
};

function fakeSession(overrides: Partial<SessionApi> = {}): SessionApi {
  return {
    loadCurrentUser: vi.fn(async () => ({ ok: true as const, status: 200, data: hannah })),
    logIn: vi.fn(async () => ({ ok: true as const, status: 204, data: undefined })),
    register: vi.fn(async () => ({ ok: true as const, status: 201, data: hannah })),
    logOut: vi.fn(async () => ({ ok: true as const, status: 204, data: undefined })),
    loadPasswordPolicy: vi.fn(async () => ({
      ok: true as const,
      status: 200,
      data: { min_length: 20, max_length: 1024 },
    })),
    ...overrides,
  };
}

describe('accountActions', () => {
  it('records the user after a login, and leaves the store alone when it is refused', async () => {
    const store = createAppStore();
    const refused = accountActions(
      store,
      fakeSession({ logIn: async () => ({ ok: false, problem: problemOf(401, 'INVALID_CREDENTIALS') }) }),
    );
    expect(await refused.logIn('hannah@example.com', 'wrong')).toMatchObject({
      ok: false,
      problem: { code: 'INVALID_CREDENTIALS' },
    });
    expect(store.user.value).toBeNull();
    const session = fakeSession();
    expect(await accountActions(store, session).logIn('hannah@example.com', 'right')).toEqual({ ok: true });
    expect(session.logIn).toHaveBeenCalledWith('hannah@example.com', 'right');
    expect(store.user.value).toEqual(hannah);
  });

  it('signs up and logs in; a failed login after it still reports the account as created', async () => {
    const store = createAppStore();
    const session = fakeSession();
    const input = { email: 'hannah@example.com', password: 'correct horse battery' };
    expect(await accountActions(store, session).signUp(input)).toEqual({ ok: true, loggedIn: true });
    expect(session.register).toHaveBeenCalledWith(input);
    expect(store.user.value).toEqual(hannah);

    const other = createAppStore();
    const noLogin = fakeSession({
      logIn: async () => ({ ok: false, problem: problemOf(429, 'RATE_LIMITED') }),
    });
    expect(await accountActions(other, noLogin).signUp(input)).toEqual({ ok: true, loggedIn: false });
    expect(other.user.value).toBeNull();
  });

  it('answers the problem of a refused sign-up without logging in', async () => {
    const store = createAppStore();
    const session = fakeSession({
      register: async () => ({ ok: false, problem: problemOf(409, 'EMAIL_TAKEN') }),
    });
    const result = await accountActions(store, session).signUp({
      email: 'a@b.example',
      password: 'x'.repeat(20),
    });
    expect(result).toMatchObject({ ok: false, problem: { code: 'EMAIL_TAKEN' } });
    expect(session.logIn).not.toHaveBeenCalled();
    expect(store.user.value).toBeNull();
  });

  it('logs out on success and on 401 (already ended), and keeps the user when the server failed', async () => {
    for (const [answer, expected] of [
      [{ ok: true as const, status: 204, data: undefined }, null],
      [{ ok: false as const, problem: problemOf(401, 'UNAUTHENTICATED') }, null],
      [{ ok: false as const, problem: problemOf(503, 'UNAVAILABLE') }, hannah],
    ] as const) {
      const store = createAppStore();
      store.user.value = hannah;
      const result = await accountActions(store, fakeSession({ logOut: async () => answer })).logOut();
      expect(result.ok).toBe(expected === null);
      expect(store.user.value).toEqual(expected);
    }
  });

  it('loads the password policy into the store once; a failure leaves it null for the next try', async () => {
    const store = createAppStore();
    const failing = fakeSession({
      loadPasswordPolicy: async () => ({ ok: false, problem: problemOf(503, 'UNAVAILABLE') }),
    });
    await accountActions(store, failing).loadPasswordPolicy();
    expect(store.passwordPolicy.value).toBeNull();
    const session = fakeSession();
    const actions = accountActions(store, session);
    await actions.loadPasswordPolicy();
    await actions.loadPasswordPolicy();
    expect(store.passwordPolicy.value).toEqual({ min_length: 20, max_length: 1024 });
    expect(session.loadPasswordPolicy).toHaveBeenCalledOnce();
  });
});
