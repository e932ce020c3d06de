/**
 * The account's actions: log in, sign up, log out. They are the only writers of
 * {@link AppStore.user} after the shell's first look, so every component showing who is signed
 * in (navigation, home, the auth pages) follows the same answer.
 */
import type { ApiResult } from './api.js';
import type { Problem } from './problem.js';
import * as session from './session.js';
import type { AppStore } from './store.js';
import type { PasswordPolicy, User } from './types.js';

/** What signing up sends (`POST /auth/register`). */
export interface SignUpInput {
  email: string;
  password: string;
  /** Left out when empty. */
  full_name?: string;
}

/**
 * Outcome of {@link AccountActions.signUp}: the account exists once `ok`; `loggedIn` is false
 * when the login that follows failed (the user then logs in by hand).
 */
export type SignUpResult = { ok: true; loggedIn: boolean } | { ok: false; problem: Problem };

/** The account actions components may call (they take a narrow `Pick` of it, so tests pass fakes). */
export interface AccountActions {
  /** Logs in, then records who is signed in. */
  logIn(email: string, password: string): Promise<{ ok: true } | { ok: false; problem: Problem }>;
  /** Creates the account and logs it in. */
  signUp(input: SignUpInput): Promise<SignUpResult>;
  /**
   * Logs out. A 401 counts as done (the session had already ended); the user is then null.
   * Answers the problem when the server could not be told.
   */
  logOut(): Promise<{ ok: true } | { ok: false; problem: Problem }>;
  /**
   * Fills `store.passwordPolicy` from the server, once per document (a failure leaves it null and
   * is tried again by the next page that asks).
   */
  loadPasswordPolicy(): Promise<void>;
  /**
   * Records who the server says is signed in, after a page asked it itself (`loadCurrentUser`
   * once a mailed link or a password reset changed the account), or null when the server ended
   * the session.
   */
  recordUser(user: User | null): void;
}

/** The HTTP calls the actions make (`session.ts`); a parameter so the actions can be tested. */
export interface SessionApi {
  loadCurrentUser(): Promise<ApiResult<User | null>>;
  logIn(email: string, password: string): Promise<ApiResult<undefined>>;
  register(input: SignUpInput): Promise<ApiResult<User>>;
  logOut(): Promise<ApiResult<undefined>>;
  loadPasswordPolicy(): Promise<ApiResult<PasswordPolicy>>;
}

/** The account actions, writing `store`. */
export function accountActions(store: AppStore, api: SessionApi = session): AccountActions {
  return {
    async logIn(email, password) {
      const result = await api.logIn(email, password);
      if (!result.ok) return result;
      const me = await api.loadCurrentUser();
      // The login stands even when the follow-up read failed; the next page load will tell.
      store.user.value = me.ok ? me.data : null;
      return { ok: true };
    },
    async signUp(input) {
      const created = await api.register(input);
      if (!created.ok) return created;
      const login = await api.logIn(input.email, input.password);
      if (!login.ok) return { ok: true, loggedIn: false };
      const me = await api.loadCurrentUser();
      store.user.value = me.ok && me.data !== null ? me.data : created.data;
      return { ok: true, loggedIn: true };
    },
    async logOut() {
      const result = await api.logOut();
      if (!result.ok && result.problem.status !== 401) return result;
      store.user.value = null;
      return { ok: true };
    },
    recordUser(user) {
      store.user.value = user;
    },
    async loadPasswordPolicy() {
      if (store.passwordPolicy.peek() !== null) return;
      const result = await api.loadPasswordPolicy();
      if (result.ok) store.passwordPolicy.value = result.data;
    },
  };
}
