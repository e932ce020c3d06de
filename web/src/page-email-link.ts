/**
 * Landing pages of the mailed address links (issue 12): `#/verify-email?token=…` confirms the
 * account's address, `#/confirm-email?token=…` applies an email change. Each posts its token once
 * on a click, not on load: mail scanners that open links must not spend them.
 */
import { confirmEmailChange, verifyEmail } from './account-api.js';
import { h } from './dom.js';
import { buildAlert, setBusy, showProblem } from './forms.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { missingToken } from './page-password.js';
import { loadCurrentUser } from './session.js';

const PAGES = {
  'verify-email': {
    title: 'Confirm your email address',
    intro: 'Confirm that this address belongs to your account.',
    button: 'Confirm my address',
    done: 'Your address is confirmed.',
    call: verifyEmail,
  },
  'confirm-email': {
    title: 'Confirm your new email address',
    intro: 'Make this address the one your account signs in with. The old address stops working.',
    button: 'Use this address',
    done: 'Your account now uses its new address.',
    call: confirmEmailChange,
  },
} as const;

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
  const alert = buildAlert('form-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'confirm-link-button' },
    text.button,
  );
  const form = h('form', { novalidate: true, 'data-testid': 'email-link-form' }, alert.element, button);
  ctx.main.append(h('p', {}, text.intro), form);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    setBusy(form, button, true, 'Confirming…');
    void (async () => {
      const result = await text.call(token);
      if (ctx.signal.aborted) return;
      if (!result.ok) {
        setBusy(form, button, false, '');
        showProblem(result.problem, [], alert);
        return;
      }
      // The address (or its verified flag) changed: refresh who is signed in, if anyone.
      const me = await loadCurrentUser();
      if (ctx.signal.aborted) return;
      if (me.ok) ctx.account.recordUser(me.data);
      ctx.navigate(me.ok && me.data !== null ? '#/account' : '#/login', text.done);
    })();
  });
}
