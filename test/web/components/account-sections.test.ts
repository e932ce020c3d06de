// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import type { SessionView } from '../../../web/src/account-api.js';
import type { ApiResult } from '../../../web/src/api.js';
import { accountDelete } from '../../../web/src/components/account-delete.js';
import { accountEmail } from '../../../web/src/components/account-email.js';
import { accountPassword } from '../../../web/src/components/account-password.js';
import { accountProfile } from '../../../web/src/components/account-profile.js';
import { accountSessions } from '../../../web/src/components/account-sessions.js';
import type { StepUpActions } from '../../../web/src/components/step-up.js';
import { ACCOUNT_SECTIONS } from '../../../web/src/page-account.js';
import { createAppStore } from '../../../web/src/store.js';
import type { User } from '../../../web/src/types.js';
import { problemOf, settle } from '../fixtures.js';

const user: User = {
  id: 'u1',
  email: 'ada@example.com',
  full_name: 'Ada',
  role: 'user',
  is_active: true,
  email_verified: false,
  created_at: '2026-01-01T00:00:00.000Z',
};

const ok = <T>(data: T, status = 200): ApiResult<T> => ({ ok: true, status, data });
const failed = <T>(status: number, code: string, detail = 'Nope.'): ApiResult<T> => ({
  ok: false,
  problem: problemOf(status, code, detail),
});

function byTestId<T extends HTMLElement>(root: HTMLElement, testId: string): T {
  const found = root.querySelector<T>(`[data-testid="${testId}"]`);
  if (found === null) throw new Error(`no ${testId}`);
  return found;
}

/** The step-up calls, for tests where the server never asks to step up (`account-step-up.test.ts` does). */
function noStepUp(): StepUpActions {
  const unexpected = async (): Promise<never> => {
    throw new Error('no step-up expected');
  };
  return { loadMfaStatus: unexpected, reauthenticate: unexpected, reauthenticateWithPasskey: unexpected };
}

function context<A>(actions: A) {
  const store = createAppStore();
  store.user.value = user;
  const signedOut = vi.fn();
  return { store, actions: { ...noStepUp(), ...actions }, until: new AbortController().signal, signedOut };
}

function fill(root: HTMLElement, testId: string, value: string) {
  byTestId<HTMLInputElement>(root, testId).value = value;
}

function submit(root: HTMLElement, testId: string) {
  byTestId<HTMLFormElement>(root, testId).dispatchEvent(new Event('submit', { cancelable: true }));
}

const session = (id: string, current: boolean): SessionView => ({
  id,
  transport: 'cookie',
  current,
  created_at: '2026-01-01T00:00:00.000Z',
  last_used_at: '2026-01-01T00:00:00.000Z',
  expires_at: '2026-02-01T00:00:00.000Z',
  user_agent: current ? 'Firefox' : 'Chromium on a phone',
  ip: '203.0.113.5',
});

describe('account page sections', () => {
  it('is a list of sections others can extend, each its own <section>', () => {
    expect(ACCOUNT_SECTIONS.map((section) => section.name)).toEqual([
      'accountProfile',
      'accountPassword',
      'accountEmail',
      'accountSessions',
      'accountConnectedApps',
      'accountDelete',
    ]);
  });

  it('profile: shows whether the address is confirmed, mails a link, saves the name into the store', async () => {
    const updated = { ...user, full_name: 'Ada L.' };
    const actions = {
      requestVerification: vi.fn(async () => ok(undefined, 202)),
      updateProfile: vi.fn(async () => ok(updated)),
    };
    const ctx = context(actions);
    const section = accountProfile(ctx);
    expect(byTestId(section, 'email-verified').textContent).toBe('not confirmed');
    byTestId<HTMLButtonElement>(section, 'send-verification').click();
    await settle();
    expect(actions.requestVerification).toHaveBeenCalledOnce();
    expect(byTestId(section, 'profile-status').textContent).toMatch(/on its way/);
    fill(section, 'profile-name-input', '  Ada L. ');
    submit(section, 'profile-form');
    await settle();
    expect(actions.updateProfile).toHaveBeenCalledWith({ full_name: 'Ada L.' });
    expect(ctx.store.user.value?.full_name).toBe('Ada L.');
    // Once confirmed, the button goes.
    ctx.store.user.value = { ...updated, email_verified: true };
    expect(byTestId(section, 'email-verified').textContent).toBe('confirmed');
    expect(byTestId(section, 'send-verification').hidden).toBe(true);
  });

  it('password: checks the length before asking, and shows a wrong current password under its field', async () => {
    const actions = {
      updateProfile: vi.fn(async () => failed<User>(401, 'INVALID_CREDENTIALS', 'Wrong password.')),
    };
    const ctx = context(actions);
    ctx.store.passwordPolicy.value = { min_length: 15, max_length: 1024 };
    const section = accountPassword(ctx);
    fill(section, 'current-password-input', 'old one');
    fill(section, 'change-password-input', 'short');
    submit(section, 'password-form');
    await settle();
    expect(actions.updateProfile).not.toHaveBeenCalled();
    expect(byTestId(section, 'password-error').textContent).toMatch(/at least 15/);
    fill(section, 'change-password-input', 'a long enough new passphrase');
    submit(section, 'password-form');
    await settle();
    expect(actions.updateProfile).toHaveBeenCalledWith({
      current_password: 'old one',
      password: 'a long enough new passphrase',
    });
    expect(byTestId<HTMLInputElement>(section, 'current-password-input').getAttribute('aria-invalid')).toBe(
      'true',
    );
  });

  it("password: follows the server's policy in the store, and leaves the lengths to the server without one", async () => {
    const actions = { updateProfile: vi.fn(async () => ok(user)) };
    const ctx = context(actions);
    const section = accountPassword(ctx);
    const input = byTestId<HTMLInputElement>(section, 'change-password-input');
    const hint = () => section.querySelector('.field-hint')?.textContent;
    // No policy yet: no number is guessed, and the server alone judges the length.
    expect(hint()).not.toMatch(/\d/);
    expect(input.hasAttribute('minlength')).toBe(false);
    fill(section, 'current-password-input', 'old one');
    fill(section, 'change-password-input', 'short');
    submit(section, 'password-form');
    await settle();
    expect(actions.updateProfile).toHaveBeenCalledOnce();
    // An operator's PASSWORD_MIN_LENGTH=24 reaches the page through the store.
    ctx.store.passwordPolicy.value = { min_length: 24, max_length: 30 };
    expect(hint()).toBe('At least 24 characters, and not a commonly used password.');
    expect(input.minLength).toBe(24);
    fill(section, 'current-password-input', 'old one');
    fill(section, 'change-password-input', 'x'.repeat(20));
    submit(section, 'password-form');
    await settle();
    expect(byTestId(section, 'password-error').textContent).toMatch(/at least 24/);
    fill(section, 'change-password-input', 'x'.repeat(31));
    submit(section, 'password-form');
    await settle();
    expect(byTestId(section, 'password-error').textContent).toMatch(/at most 30/);
    expect(actions.updateProfile).toHaveBeenCalledOnce();
  });

  it('email: says where to look once the server accepted the change', async () => {
    const actions = { requestEmailChange: vi.fn(async () => ok(user, 202)) };
    const section = accountEmail(context(actions));
    fill(section, 'new-email-input', 'new@example.com');
    fill(section, 'email-current-password-input', 'pw');
    submit(section, 'email-form');
    await settle();
    expect(actions.requestEmailChange).toHaveBeenCalledWith('new@example.com', 'pw');
    expect(byTestId(section, 'email-status').textContent).toMatch(/Check new@example\.com/);
  });

  it('sessions: lists them, signs out another one, and signs out everywhere', async () => {
    const actions = {
      listSessions: vi.fn(async () => ok([session('s1', true), session('s2', false)])),
      endSession: vi.fn(async () => ok(undefined, 204)),
      logOutEverywhere: vi.fn(async () => ok(undefined, 204)),
    };
    const ctx = context(actions);
    const section = accountSessions(ctx);
    await settle();
    const items = () => section.querySelectorAll('[data-testid="session-item"]');
    expect(items()).toHaveLength(2);
    // The current session has no "Sign out" of its own (Log out does that).
    expect(section.querySelectorAll('[data-testid="end-session"]')).toHaveLength(1);
    expect(byTestId(section, 'session-current').textContent).toBe('(this browser)');
    byTestId<HTMLButtonElement>(section, 'end-session').click();
    await settle();
    expect(actions.endSession).toHaveBeenCalledWith('s2');
    expect(items()).toHaveLength(1);
    byTestId<HTMLButtonElement>(section, 'logout-everywhere').click();
    await settle();
    expect(actions.logOutEverywhere).toHaveBeenCalledOnce();
    expect(ctx.signedOut).toHaveBeenCalledWith('You are signed out on every device.');
  });

  it('delete: needs the password and a second click; a refusal stays on the page', async () => {
    const deleteAccount = vi
      .fn()
      .mockResolvedValueOnce(failed(409, 'LAST_SUPER_ADMIN', 'This is the last active super_admin.'))
      .mockResolvedValueOnce(ok(undefined, 204));
    const ctx = context({ deleteAccount });
    const section = accountDelete(ctx);
    submit(section, 'delete-form');
    expect(deleteAccount).not.toHaveBeenCalled();
    fill(section, 'delete-current-password-input', 'pw');
    submit(section, 'delete-form');
    expect(deleteAccount).not.toHaveBeenCalled();
    expect(byTestId(section, 'delete-account-button').textContent).toMatch(/Yes, delete it/);
    submit(section, 'delete-form');
    await settle();
    expect(byTestId(section, 'delete-error').textContent).toMatch(/last active super_admin/);
    expect(ctx.signedOut).not.toHaveBeenCalled();
    submit(section, 'delete-form');
    await settle();
    expect(deleteAccount).toHaveBeenLastCalledWith('pw');
    expect(ctx.signedOut).toHaveBeenCalledWith('Your account was deleted.');
  });
});
