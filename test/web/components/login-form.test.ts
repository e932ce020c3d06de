// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AccountActions } from '../../../web/src/account-actions.js';
import { loginForm } from '../../../web/src/components/login-form.js';
import { problemOf, settle } from '../fixtures.js';

afterEach(() => {
  document.body.replaceChildren();
});

function setUp(logIn: AccountActions['logIn'], until = new AbortController().signal) {
  const onLoggedIn = vi.fn();
  const form = loginForm({ logIn }, { until, onLoggedIn });
  document.body.append(form);
  const get = <T extends HTMLElement>(testId: string) => {
    const element = form.querySelector<T>(`[data-testid="${testId}"]`);
    if (element === null) throw new Error(`no ${testId}`);
    return element;
  };
  return {
    form,
    onLoggedIn,
    email: get<HTMLInputElement>('email-input'),
    password: get<HTMLInputElement>('password-input'),
    button: get<HTMLButtonElement>('login-button'),
    alert: get('form-error'),
  };
}

describe('loginForm', () => {
  it('asks for both fields before calling the server', () => {
    const logIn = vi.fn<AccountActions['logIn']>();
    const { form, alert, email } = setUp(logIn);
    form.requestSubmit();
    expect(logIn).not.toHaveBeenCalled();
    expect(alert.hidden).toBe(false);
    expect(email.getAttribute('aria-invalid')).toBe('true');
  });

  it('sends the trimmed email and the password as typed, busy until the answer', async () => {
    let answer: (value: Awaited<ReturnType<AccountActions['logIn']>>) => void = () => {};
    const logIn = vi.fn<AccountActions['logIn']>(
      () =>
        new Promise((resolve) => {
          answer = resolve;
        }),
    );
    const { form, email, password, button, onLoggedIn } = setUp(logIn);
    email.value = ' hannah@example.com ';
    password.value = ' secret with spaces ';
    form.requestSubmit();
    expect(logIn).toHaveBeenCalledWith('hannah@example.com', ' secret with spaces ');
    expect(button.disabled).toBe(true);
    expect(form.getAttribute('aria-busy')).toBe('true');
    answer({ ok: true });
    await settle();
    expect(onLoggedIn).toHaveBeenCalledOnce();
    expect(button.disabled).toBe(false);
  });

  it('shows a refusal and selects the password for retyping', async () => {
    const logIn = vi.fn<AccountActions['logIn']>(async () => ({
      ok: false,
      problem: problemOf(401, 'INVALID_CREDENTIALS', 'The email or password is wrong.'),
    }));
    const { form, email, password, alert, onLoggedIn } = setUp(logIn);
    email.value = 'hannah@example.com';
    password.value = 'wrong';
    form.requestSubmit();
    await settle();
    expect(onLoggedIn).not.toHaveBeenCalled();
    expect(alert.textContent).toContain('The email or password is wrong.');
    expect(password.disabled).toBe(false);
  });

  it('ignores an answer that arrives after the page was left', async () => {
    const until = new AbortController();
    const logIn = vi.fn<AccountActions['logIn']>(async () => ({ ok: true }));
    const { form, email, password, onLoggedIn } = setUp(logIn, until.signal);
    email.value = 'hannah@example.com';
    password.value = 'right';
    form.requestSubmit();
    until.abort();
    await settle();
    expect(onLoggedIn).not.toHaveBeenCalled();
  });
});
