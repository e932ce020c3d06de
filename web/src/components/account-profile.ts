/**
 * Account page: the address (and whether it is confirmed, with a button that mails the link) and
 * the display name.
 */
import { h, setChildren } from '../dom.js';
import { buildAlert, buildField, setBusy, showProblem } from '../forms.js';
import type { AccountActions, AccountSectionContext } from './account-section.js';
import { say, sectionFrame, statusLine } from './account-section.js';
import { watch } from './watch.js';

/** The profile section. */
export function accountProfile(
  ctx: AccountSectionContext<Pick<AccountActions, 'updateProfile' | 'requestVerification'>>,
): HTMLElement {
  const { store, actions, until } = ctx;
  const address = h('p', { 'data-testid': 'profile-email' });
  const status = statusLine('profile-status');
  const alert = buildAlert('profile-error');
  const verify = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': 'send-verification' },
    'Mail me a confirmation link',
  );
  watch(until, () => {
    const user = store.user.value;
    if (user === null) return;
    setChildren(
      address,
      user.email,
      ' ',
      h(
        'span',
        { class: user.email_verified ? 'badge badge--ok' : 'badge', 'data-testid': 'email-verified' },
        user.email_verified ? 'confirmed' : 'not confirmed',
      ),
    );
    verify.hidden = user.email_verified;
  });
  verify.addEventListener('click', () => {
    verify.disabled = true;
    alert.clear();
    void actions.requestVerification().then((result) => {
      if (until.aborted) return;
      verify.disabled = false;
      if (result.ok) say(status, 'A confirmation link is on its way to your address.');
      else showProblem(result.problem, [], alert);
    });
  });

  const name = buildField({
    name: 'full_name',
    label: 'Your name',
    autocomplete: 'name',
    maxLength: 400,
    value: store.user.peek()?.full_name ?? '',
    testId: 'profile-name-input',
  });
  const save = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'profile-save' },
    'Save name',
  );
  const form = h('form', { novalidate: true, 'data-testid': 'profile-form' }, name.element, save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    setBusy(form, save, true, 'Saving…');
    const value = name.input.value.trim();
    void actions.updateProfile({ full_name: value === '' ? null : value }).then((result) => {
      if (until.aborted) return;
      setBusy(form, save, false, '');
      if (!result.ok) {
        showProblem(result.problem, [name], alert);
        return;
      }
      store.user.value = result.data;
      say(status, 'Your name was saved.');
    });
  });
  return sectionFrame('account-profile', 'Profile', alert.element, status, address, verify, form);
}
