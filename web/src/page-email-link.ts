/**
 * Landing pages of the mailed address links (issue 12): `#/verify-email?token=…` confirms the
 * account's address, `#/confirm-email?token=…` applies an email change. Each posts its token once
 * on a click, not on load: mail scanners that open links must not spend them.
 *
 * A link proves the mailbox, not that whoever follows it chose the account's password: whoever
 * signed up first may be a stranger (red-team 2026-12d I9). So without a session of the account in
 * this browser the server answers `VERIFICATION_NEEDS_PASSWORD` (or `EMAIL_CHANGE_NEEDS_PASSWORD`),
 * the link still unspent, and the page then offers what the server accepts: the account's password
 * ("I made this account on another device"), and for a verification a new password ("I did not
 * create this account, or I forgot its password"), which makes the account the address owner's.
 */

import { confirmEmailChange, type LinkPassword, verifyEmail } from './account-api.js';
import type { ApiResult } from './api.js';
import { h } from './dom.js';
import {
  type Alert,
  buildAlert,
  buildField,
  checkRequired,
  type Field,
  setBusy,
  showProblem,
} from './forms.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { missingToken } from './page-password.js';
import { buildNewPasswordField, passwordLengthAccepted } from './password-rule.js';
import type { Problem } from './problem.js';
import { loginHash } from './routes.js';
import { loadCurrentUser } from './session.js';

/** The account's password, sent once the server asked for it; nothing at first. */
type CurrentPassword = Extract<LinkPassword, { current_password: string }> | Record<string, never>;

/** What a link page says and sends. */
interface LinkPageSpec {
  title: string;
  intro: string;
  button: string;
  done: string;
  /** The code the server answers when this browser holds no session of the account. */
  needsPassword: 'VERIFICATION_NEEDS_PASSWORD' | 'EMAIL_CHANGE_NEEDS_PASSWORD';
  /** Said above the password choices. */
  notSignedIn: string;
  /** Whether a new password may take the account over (verification only). */
  takeOver: boolean;
  call(token: string, password: CurrentPassword): Promise<ApiResult<undefined>>;
}

const PAGES: Record<'verify-email' | 'confirm-email', LinkPageSpec> = {
  'verify-email': {
    title: 'Confirm your email address',
    intro: 'Confirm that this address belongs to your account.',
    button: 'Confirm my address',
    done: 'Your address is confirmed.',
    needsPassword: 'VERIFICATION_NEEDS_PASSWORD',
    notSignedIn:
      'You are not signed in to this account in this browser. Someone created it with your address: ' +
      'was it you?',
    takeOver: true,
    call: verifyEmail,
  },
  'confirm-email': {
    title: 'Confirm your new email address',
    intro: 'Make this address the one your account signs in with. The old address stops working.',
    button: 'Use this address',
    done: 'Your account now uses its new address.',
    needsPassword: 'EMAIL_CHANGE_NEEDS_PASSWORD',
    notSignedIn:
      'You are not signed in in this browser to the account that asked for this change. If you did not ask ' +
      'for it, close this page: nothing changes.',
    takeOver: false,
    call: confirmEmailChange,
  },
};

/** One form of a link page: its fields, a submit button, and what its answer leads to. */
interface LinkFormSpec {
  testId: string;
  fields: Field[];
  button: { label: string; busy: string; testId: string };
  /** Checks before sending (required fields, password lengths); false keeps the form as it is. */
  accept?: (alert: Alert) => boolean;
  send(): Promise<ApiResult<undefined>>;
  /** Handles a refusal itself when it returns true (otherwise it is shown on the form). */
  onProblem?: (problem: Problem) => boolean;
  onDone(): Promise<void>;
}

function linkForm(ctx: PageContext, spec: LinkFormSpec): HTMLFormElement {
  const alert = buildAlert('form-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': spec.button.testId },
    spec.button.label,
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': spec.testId },
    alert.element,
    ...spec.fields.map((field) => field.element),
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (spec.accept !== undefined && !spec.accept(alert)) return;
    setBusy(form, button, true, spec.button.busy);
    void (async () => {
      const result = await spec.send();
      if (ctx.signal.aborted) return;
      if (result.ok) {
        await spec.onDone();
        return;
      }
      setBusy(form, button, false, '');
      if (spec.onProblem?.(result.problem) === true) return;
      showProblem(result.problem, spec.fields, alert);
    })();
  });
  return form;
}

/** After a confirmation: refresh who is signed in, if anyone, and go on. */
async function finish(ctx: PageContext, done: string): Promise<void> {
  const me = await loadCurrentUser();
  if (ctx.signal.aborted) return;
  if (me.ok) ctx.account.recordUser(me.data);
  ctx.navigate(me.ok && me.data !== null ? '#/account' : loginHash(), done);
}

/** The choices offered once the server asked for a password. */
function passwordChoices(ctx: PageContext, text: LinkPageSpec, token: string): HTMLElement[] {
  const current = buildField({
    name: 'current_password',
    label: 'Password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    testId: 'link-current-password-input',
  });
  const withPassword = h(
    'section',
    { 'data-testid': 'link-current-password' },
    h('h2', {}, 'Confirm with your password'),
    h('p', {}, 'If you created this account, enter its password.'),
    linkForm(ctx, {
      testId: 'link-current-password-form',
      fields: [current],
      button: {
        label: 'Confirm with my password',
        busy: 'Confirming…',
        testId: 'link-current-password-button',
      },
      accept: (alert) => checkRequired([current], alert),
      send: () => text.call(token, { current_password: current.input.value }),
      onDone: () => finish(ctx, text.done),
    }),
  );
  const intro = h('p', { 'data-testid': 'link-needs-password' }, text.notSignedIn);
  if (!text.takeOver) return [intro, withPassword];
  void ctx.account.loadPasswordPolicy();
  const chosen = buildNewPasswordField(
    { name: 'new_password', label: 'New password', testId: 'link-new-password-input' },
    ctx.store.passwordPolicy,
    ctx.signal,
  );
  const takeOver = h(
    'section',
    { 'data-testid': 'link-new-password' },
    h('h2', {}, 'I did not create this account, or I forgot its password'),
    h(
      'p',
      {},
      'Choose a new password and the account is yours. Whatever was set up on it before (passkeys, an ' +
        'authenticator app, connected apps) is removed, and every session of it ends.',
    ),
    linkForm(ctx, {
      testId: 'link-new-password-form',
      fields: [chosen],
      button: { label: 'Choose this password', busy: 'Saving…', testId: 'link-new-password-button' },
      accept: (alert) =>
        checkRequired([chosen], alert) &&
        passwordLengthAccepted(chosen, [chosen], ctx.store.passwordPolicy.peek(), alert),
      send: () => verifyEmail(token, { new_password: chosen.input.value }),
      onDone: async () => {
        // Every session of that account ended (this browser's too, had it held one).
        const me = await loadCurrentUser();
        if (ctx.signal.aborted) return;
        ctx.account.recordUser(me.ok ? me.data : null);
        ctx.navigate(
          loginHash(),
          'Your address is confirmed and the account is yours. Log in with your new password.',
        );
      },
    }),
  );
  return [intro, withPassword, takeOver];
}

/** Renders the landing page of `page` for `token`. */
export function renderEmailLink(
  ctx: PageContext,
  page: 'verify-email' | 'confirm-email',
  token: string | undefined,
): void {
  const text = PAGES[page];
  setTitle(text.title);
  ctx.main.append(pageHeading(text.title));
  if (token === undefined) {
    ctx.main.append(missingToken('account'));
    return;
  }
  const intro = h('p', {}, text.intro);
  const confirm = linkForm(ctx, {
    testId: 'email-link-form',
    fields: [],
    button: { label: text.button, busy: 'Confirming…', testId: 'confirm-link-button' },
    send: () => text.call(token, {}),
    onProblem: (problem) => {
      if (problem.code !== text.needsPassword) return false;
      // Not signed in to the account here: the link is unspent, and the page asks which it is.
      intro.remove();
      confirm.remove();
      ctx.main.append(...passwordChoices(ctx, text, token));
      ctx.main.querySelector('input')?.focus();
      return true;
    },
    onDone: () => finish(ctx, text.done),
  });
  ctx.main.append(intro, confirm);
}
