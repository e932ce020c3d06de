// @vitest-environment happy-dom
/**
 * The account page's sensitive forms (password, email change, deletion) under step-up: the server
 * answers STEP_UP_REQUIRED, the section asks "confirm it's you" (the fields follow the account's
 * factors, read only then), and the same request is sent once more after the re-authentication.
 */
import { beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import type { ApiResult } from '../../../web/src/api.js';
import { accountDelete } from '../../../web/src/components/account-delete.js';
import { accountEmail } from '../../../web/src/components/account-email.js';
import { accountPassword } from '../../../web/src/components/account-password.js';
import type { AccountSectionContext } from '../../../web/src/components/account-section.js';
import type { StepUpActions } from '../../../web/src/components/step-up.js';
import type { MfaStatus } from '../../../web/src/security-api.js';
import { createAppStore } from '../../../web/src/store.js';
import type { User } from '../../../web/src/types.js';
import { problemOf } from '../fixtures.js';

const user: User = {
  id: 'u1',
  email: 'ada@example.com',
  full_name: 'Ada',
  role: 'user',
  is_active: true,
  email_verified: true,
  created_at: '2026-01-01T00:00:00.000Z',
};

const TOTP_ON: MfaStatus = { totp: 'on', recovery_codes_left: 10, passkeys: 0 };
const TOTP_AND_PASSKEY: MfaStatus = { totp: 'on', recovery_codes_left: 10, passkeys: 1 };
const PASSKEY_ONLY: MfaStatus = { totp: 'off', recovery_codes_left: 0, passkeys: 2 };

/** The server's answer when the session is too old or proved no second factor. */
const STEP_UP = problemOf(
  401,
  'STEP_UP_REQUIRED',
  'This change needs a sign-in with your second factor. Re-authenticate at POST /auth/reauthenticate …',
);

/** The server's answers to the change, in order: `step-up` (refused) or `ok`. */
type Script = ('step-up' | 'ok')[];

/** Fakes for the step-up calls; the account's factors are `status`. */
function stepUpFakes(status: MfaStatus) {
  return {
    loadMfaStatus: vi.fn(
      async (): Promise<ApiResult<MfaStatus>> => ({ ok: true, status: 200, data: status }),
    ),
    reauthenticate: vi.fn(
      async (): Promise<ApiResult<unknown>> => ({ ok: true, status: 204, data: undefined }),
    ),
    reauthenticateWithPasskey: vi.fn(
      async (): Promise<ApiResult<unknown>> => ({ ok: true, status: 204, data: undefined }),
    ),
  } satisfies StepUpActions;
}
type StepUpFakes = ReturnType<typeof stepUpFakes>;

function contextOf<A>(actions: A): AccountSectionContext<A> & { signedOut: Mock<(notice: string) => void> } {
  const store = createAppStore();
  store.user.value = user;
  return { store, actions, until: new AbortController().signal, signedOut: vi.fn() };
}

/** Lets every pending promise callback run (the fakes answer within microtasks). */
const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function byTestId<T extends HTMLElement>(root: ParentNode, testId: string): T {
  const found = root.querySelector<T>(`[data-testid="${testId}"]`);
  if (found === null) throw new Error(`no ${testId}`);
  return found;
}

function fill(root: ParentNode, testId: string, value: string) {
  byTestId<HTMLInputElement>(root, testId).value = value;
}

function submit(root: ParentNode, testId: string) {
  byTestId<HTMLFormElement>(root, testId).dispatchEvent(new Event('submit', { cancelable: true }));
}

/** A mounted section, the fake of its change call, and what to look at. */
interface Mounted {
  section: HTMLElement;
  change: Mock;
  ctx: { signedOut: Mock<(notice: string) => void> };
}

/** What differs between the three sensitive sections. */
interface SectionCase {
  name: string;
  mount(script: Script, fakes: StepUpFakes): Mounted;
  /** Fills the form and submits it (the deletion's second, confirming click included). */
  send(section: HTMLElement): void;
  /** The change call's arguments for what `send` typed. */
  args: unknown[];
  /** The form's submit button. */
  button: string;
  /** An input `send` filled, and its value (kept after a Cancel). */
  kept: [testId: string, value: string];
  /** Says the change happened. */
  expectDone(mounted: Mounted): void;
  /** The status line's text after a Cancel. */
  cancelled: RegExp;
}

function answers<T>(script: Script, done: T): () => Promise<ApiResult<T>> {
  return async () =>
    script.shift() === 'step-up' ? { ok: false, problem: STEP_UP } : { ok: true, status: 200, data: done };
}

const CASES: SectionCase[] = [
  {
    name: 'password',
    mount(script, fakes) {
      const change = vi.fn(answers(script, user));
      const ctx = contextOf({ ...fakes, updateProfile: change });
      return { section: accountPassword(ctx), change, ctx };
    },
    send(section) {
      fill(section, 'current-password-input', 'old passphrase');
      fill(section, 'change-password-input', 'a long enough new passphrase');
      submit(section, 'password-form');
    },
    args: [{ current_password: 'old passphrase', password: 'a long enough new passphrase' }],
    button: 'change-password-button',
    kept: ['change-password-input', 'a long enough new passphrase'],
    expectDone({ section }) {
      expect(byTestId(section, 'password-status').textContent).toMatch(/password was changed/);
    },
    cancelled: /password was not changed/,
  },
  {
    name: 'email',
    mount(script, fakes) {
      const change = vi.fn(answers(script, user));
      const ctx = contextOf({ ...fakes, requestEmailChange: change });
      return { section: accountEmail(ctx), change, ctx };
    },
    send(section) {
      fill(section, 'new-email-input', 'new@example.com');
      fill(section, 'email-current-password-input', 'old passphrase');
      submit(section, 'email-form');
    },
    args: ['new@example.com', 'old passphrase'],
    button: 'change-email-button',
    kept: ['new-email-input', 'new@example.com'],
    expectDone({ section }) {
      expect(byTestId(section, 'email-status').textContent).toMatch(/Check new@example\.com/);
    },
    cancelled: /email address was not changed/,
  },
  {
    name: 'delete',
    mount(script, fakes) {
      const change = vi.fn(answers(script, undefined));
      const ctx = contextOf({ ...fakes, deleteAccount: change });
      return { section: accountDelete(ctx), change, ctx };
    },
    send(section) {
      fill(section, 'delete-current-password-input', 'old passphrase');
      submit(section, 'delete-form');
      submit(section, 'delete-form');
    },
    args: ['old passphrase'],
    button: 'delete-account-button',
    kept: ['delete-current-password-input', 'old passphrase'],
    expectDone({ ctx }) {
      expect(ctx.signedOut).toHaveBeenCalledWith('Your account was deleted.');
    },
    cancelled: /account was not deleted/,
  },
];

beforeEach(() => {
  document.body.replaceChildren();
});

describe.each(CASES)('account $name section under step-up', (c) => {
  function mount(script: Script, status: MfaStatus) {
    const fakes = stepUpFakes(status);
    const mounted = c.mount(script, fakes);
    // Attached, so focus moves as in a page.
    document.body.append(mounted.section);
    return { ...mounted, fakes, panel: () => byTestId(mounted.section, 'step-up') };
  }

  it('asks for the password and a code when the account has an authenticator app, then sends the change once more', async () => {
    const { section, change, fakes, panel, ...rest } = mount(['step-up', 'ok'], TOTP_AND_PASSKEY);
    // The factors are read only once the server asks to step up.
    expect(fakes.loadMfaStatus).not.toHaveBeenCalled();
    expect(panel().hidden).toBe(true);
    c.send(section);
    await flush();
    expect(change).toHaveBeenCalledOnce();
    expect(fakes.loadMfaStatus).toHaveBeenCalledOnce();
    expect(panel().hidden).toBe(false);
    const heading = panel().querySelector('h3');
    expect(heading?.textContent).toBe('Confirm it’s you');
    expect(panel().getAttribute('aria-labelledby')).toBe(heading?.id);
    expect(document.activeElement).toBe(byTestId(panel(), 'step-up-password'));
    byTestId(panel(), 'step-up-otp');
    // A passkey would do as well.
    byTestId(panel(), 'step-up-passkey-button');
    fill(panel(), 'step-up-password', 'old passphrase');
    fill(panel(), 'step-up-otp', ' 123456 ');
    byTestId<HTMLButtonElement>(panel(), 'step-up-button').click();
    await flush();
    expect(fakes.reauthenticate).toHaveBeenCalledWith('old passphrase', '123456');
    expect(change).toHaveBeenCalledTimes(2);
    expect(change).toHaveBeenLastCalledWith(...c.args);
    expect(panel().hidden).toBe(true);
    c.expectDone({ section, change, ...rest });
  });

  it('offers only the passkey on a passkey-only account (a password proves no factor), then sends the change once more', async () => {
    const { section, change, fakes, panel, ...rest } = mount(['step-up', 'ok'], PASSKEY_ONLY);
    c.send(section);
    await flush();
    expect(panel().hidden).toBe(false);
    expect(panel().querySelector('[data-testid="step-up-password"]')).toBeNull();
    expect(panel().querySelector('[data-testid="step-up-otp"]')).toBeNull();
    expect(panel().querySelector('[data-testid="step-up-button"]')).toBeNull();
    const passkey = byTestId<HTMLButtonElement>(panel(), 'step-up-passkey-button');
    expect(document.activeElement).toBe(passkey);
    passkey.click();
    await flush();
    expect(fakes.reauthenticateWithPasskey).toHaveBeenCalledOnce();
    expect(fakes.reauthenticate).not.toHaveBeenCalled();
    expect(change).toHaveBeenCalledTimes(2);
    expect(change).toHaveBeenLastCalledWith(...c.args);
    c.expectDone({ section, change, ...rest });
  });

  it('Cancel sends nothing more, leaves the form as it was with a short message, and gives focus back', async () => {
    const { section, change, fakes, panel, ctx } = mount(['step-up', 'ok'], TOTP_ON);
    c.send(section);
    await flush();
    expect(byTestId(panel(), 'step-up-otp')).toBeDefined();
    byTestId<HTMLButtonElement>(panel(), 'step-up-cancel').click();
    await flush();
    expect(change).toHaveBeenCalledOnce();
    expect(fakes.reauthenticate).not.toHaveBeenCalled();
    expect(panel().hidden).toBe(true);
    const [field, value] = c.kept;
    expect(byTestId<HTMLInputElement>(section, field).value).toBe(value);
    const button = byTestId<HTMLButtonElement>(section, c.button);
    expect(button.disabled).toBe(false);
    expect(document.activeElement).toBe(button);
    expect(section.querySelector('[role="status"]:not([hidden])')?.textContent).toMatch(c.cancelled);
    // Not the server's text, which names API routes.
    expect(section.textContent).not.toMatch(/POST \/auth/);
    expect(ctx.signedOut).not.toHaveBeenCalled();
  });

  it('a second STEP_UP_REQUIRED after confirming goes back to the form instead of asking again', async () => {
    const { section, change, fakes, panel, ctx } = mount(['step-up', 'step-up', 'step-up'], PASSKEY_ONLY);
    c.send(section);
    await flush();
    byTestId<HTMLButtonElement>(panel(), 'step-up-passkey-button').click();
    await flush();
    expect(change).toHaveBeenCalledTimes(2);
    expect(fakes.reauthenticateWithPasskey).toHaveBeenCalledOnce();
    expect(fakes.loadMfaStatus).toHaveBeenCalledOnce();
    expect(panel().hidden).toBe(true);
    const button = byTestId<HTMLButtonElement>(section, c.button);
    expect(button.disabled).toBe(false);
    expect(section.querySelector('[role="alert"]:not([hidden])')?.textContent).toMatch(
      /still needs you to confirm/,
    );
    expect(section.textContent).not.toMatch(/POST \/auth/);
    expect(ctx.signedOut).not.toHaveBeenCalled();
  });
});

describe('the account page step-up prompt', () => {
  it('keeps the prompt open with the error under its field when the re-authentication fails', async () => {
    const fakes = stepUpFakes(TOTP_ON);
    fakes.reauthenticate.mockResolvedValueOnce({
      ok: false,
      problem: problemOf(401, 'INVALID_OTP', 'That code is not valid.'),
    });
    const script: Script = ['step-up', 'ok'];
    const updateProfile = vi.fn(answers(script, user));
    const section = accountPassword(contextOf({ ...fakes, updateProfile }));
    document.body.append(section);
    CASES[0]?.send(section);
    await flush();
    const panel = byTestId(section, 'step-up');
    // Both fields are required before anything is sent.
    byTestId<HTMLButtonElement>(panel, 'step-up-button').click();
    await flush();
    expect(fakes.reauthenticate).not.toHaveBeenCalled();
    fill(panel, 'step-up-password', 'old passphrase');
    fill(panel, 'step-up-otp', '000000');
    byTestId<HTMLButtonElement>(panel, 'step-up-button').click();
    await flush();
    expect(panel.hidden).toBe(false);
    const otp = byTestId<HTMLInputElement>(panel, 'step-up-otp');
    expect(otp.getAttribute('aria-invalid')).toBe('true');
    expect(updateProfile).toHaveBeenCalledOnce();
    fill(panel, 'step-up-otp', '123456');
    byTestId<HTMLButtonElement>(panel, 'step-up-button').click();
    await flush();
    expect(updateProfile).toHaveBeenCalledTimes(2);
    expect(byTestId(section, 'password-status').textContent).toMatch(/password was changed/);
  });

  it('shows why when the account’s factors cannot be read, and sends nothing more', async () => {
    const fakes = stepUpFakes(TOTP_ON);
    fakes.loadMfaStatus.mockResolvedValueOnce({
      ok: false,
      problem: problemOf(0, 'NETWORK_ERROR', 'Could not reach the server.'),
    });
    const updateProfile = vi.fn(answers(['step-up', 'ok'], user));
    const section = accountPassword(contextOf({ ...fakes, updateProfile }));
    CASES[0]?.send(section);
    await flush();
    expect(byTestId(section, 'step-up').hidden).toBe(true);
    expect(byTestId(section, 'password-error').textContent).toMatch(/Could not reach the server/);
    expect(updateProfile).toHaveBeenCalledOnce();
  });
});
