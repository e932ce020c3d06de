// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AccountActions } from '../../../web/src/account-actions.js';
import { signupForm } from '../../../web/src/components/signup-form.js';
import { createAppStore } from '../../../web/src/store.js';
import { problemOf, settle } from '../fixtures.js';

afterEach(() => {
  document.body.replaceChildren();
});

const longPassword = 'correct horse battery staple';

function setUp(signUp: AccountActions['signUp'], policy = { min_length: 15, max_length: 1024 }) {
  const onSignedUp = vi.fn();
  const store = createAppStore();
  store.passwordPolicy.value = policy;
  const form = signupForm(store, { signUp }, { until: new AbortController().signal, onSignedUp });
  document.body.append(form);
  const get = <T extends HTMLElement>(testId: string) => {
    const element = form.querySelector<T>(`[data-testid="${testId}"]`);
    if (element === null) throw new Error(`no ${testId}`);
    return element;
  };
  return {
    form,
    store,
    onSignedUp,
    email: get<HTMLInputElement>('email-input'),
    fullName: get<HTMLInputElement>('full-name-input'),
    password: get<HTMLInputElement>('password-input'),
    alert: get('form-error'),
  };
}

describe('signupForm', () => {
  it('sends the name only when one was typed, and reports whether the login followed', async () => {
    const signUp = vi.fn<AccountActions['signUp']>(async () => ({ ok: true, loggedIn: false }));
    const { form, email, fullName, password, onSignedUp } = setUp(signUp);
    email.value = 'hannah@example.com';
    password.value = longPassword;
    form.requestSubmit();
    await settle();
    expect(signUp).toHaveBeenLastCalledWith({ email: 'hannah@example.com', password: longPassword });
    expect(onSignedUp).toHaveBeenLastCalledWith(false);
    fullName.value = ' Hannah Arendt ';
    form.requestSubmit();
    await settle();
    expect(signUp).toHaveBeenLastCalledWith({
      email: 'hannah@example.com',
      password: longPassword,
      full_name: 'Hannah Arendt',
    });
  });

  it('points a taken email at its field and offers to log in instead', async () => {
    const signUp = vi.fn<AccountActions['signUp']>(async () => ({
      ok: false,
      problem: problemOf(409, 'EMAIL_TAKEN', 'An account with this email already exists.'),
    }));
    const { form, email, password, alert, onSignedUp } = setUp(signUp);
    email.value = 'hannah@example.com';
    password.value = longPassword;
    form.requestSubmit();
    await settle();
    expect(onSignedUp).not.toHaveBeenCalled();
    expect(email.getAttribute('aria-invalid')).toBe('true');
    expect(alert.querySelector('[data-testid="login-instead"]')).not.toBeNull();
  });

  it('refuses a password outside the server’s lengths without a request, counting as the server does', () => {
    const signUp = vi.fn<AccountActions['signUp']>(async () => ({ ok: true, loggedIn: true }));
    const { form, email, password, alert } = setUp(signUp, { min_length: 20, max_length: 30 });
    email.value = 'hannah@example.com';
    // 19 code points after NFKC: the ligature "ﬁ" (one code point) becomes "fi" (two).
    password.value = 'ﬁ'.repeat(9);
    form.requestSubmit();
    expect(signUp).not.toHaveBeenCalled();
    expect(password.getAttribute('aria-invalid')).toBe('true');
    expect(alert.textContent).toContain('at least 20 characters');
    password.value = 'x'.repeat(31);
    form.requestSubmit();
    expect(alert.textContent).toContain('at most 30 characters');
    expect(signUp).not.toHaveBeenCalled();
    // 20 code points after NFKC (10 ligatures): sent, as typed; the server normalises.
    password.value = 'ﬁ'.repeat(10);
    form.requestSubmit();
    expect(signUp).toHaveBeenCalledWith({ email: 'hannah@example.com', password: 'ﬁ'.repeat(10) });
  });

  it('follows the policy in the store; without one it leaves the lengths to the server', async () => {
    const signUp = vi.fn<AccountActions['signUp']>(async () => ({ ok: true, loggedIn: true }));
    const { form, store, email, password } = setUp(signUp);
    const hint = () => form.querySelector('.field-hint')?.textContent;
    expect(hint()).toBe('At least 15 characters, and not a commonly used password.');
    expect(password.minLength).toBe(15);
    store.passwordPolicy.value = { min_length: 24, max_length: 1024 };
    expect(hint()).toBe('At least 24 characters, and not a commonly used password.');
    expect(password.minLength).toBe(24);
    store.passwordPolicy.value = null;
    expect(hint()).not.toMatch(/\d/);
    expect(password.hasAttribute('minlength')).toBe(false);
    email.value = 'hannah@example.com';
    password.value = 'short';
    form.requestSubmit();
    await settle();
    expect(signUp).toHaveBeenCalledOnce();
  });
});
