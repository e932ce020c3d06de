// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AccountActions } from '../../../web/src/account-actions.js';
import { signupForm } from '../../../web/src/components/signup-form.js';
import { problemOf, settle } from '../fixtures.js';

afterEach(() => {
  document.body.replaceChildren();
});

const longPassword = 'correct horse battery staple';

function setUp(signUp: AccountActions['signUp']) {
  const onSignedUp = vi.fn();
  const form = signupForm({ signUp }, { until: new AbortController().signal, onSignedUp });
  document.body.append(form);
  const get = <T extends HTMLElement>(testId: string) => {
    const element = form.querySelector<T>(`[data-testid="${testId}"]`);
    if (element === null) throw new Error(`no ${testId}`);
    return element;
  };
  return {
    form,
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

  it('refuses a too short password without a request', () => {
    const signUp = vi.fn<AccountActions['signUp']>();
    const { form, email, password, alert } = setUp(signUp);
    email.value = 'hannah@example.com';
    password.value = 'short';
    form.requestSubmit();
    expect(signUp).not.toHaveBeenCalled();
    expect(password.getAttribute('aria-invalid')).toBe('true');
    expect(alert.textContent).toContain('at least');
  });
});
