/**
 * `#/account/security`: the account's second factors. An authenticator app (TOTP: QR code, first
 * code, recovery codes to download), passkeys (add, list, remove), and the "confirm it's you"
 * prompt that sensitive changes need when the last sign-in is older than STEP_UP_MAX_AGE (the
 * server answers 401 `STEP_UP_REQUIRED`; the change is retried once re-authenticated).
 */
import type { ApiResult } from './api.js';
import { qrCode } from './components/qr-code.js';
import { createStepUp } from './components/step-up.js';
import { h, setChildren } from './dom.js';
import { buildAlert, buildField, checkRequired, showProblem } from './forms.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { problemMessage } from './problem.js';
import {
  addPasskey,
  confirmTotp,
  disableTotp,
  listPasskeys,
  loadMfaStatus,
  type MfaStatus,
  type Passkey,
  reauthenticate,
  reauthenticateWithPasskey,
  removePasskey,
  startTotp,
} from './security-api.js';

/** `#/account/security`. */
export function renderSecurity(ctx: PageContext): void {
  setTitle('Security');
  if (ctx.store.user.peek() === null) {
    ctx.main.append(
      pageHeading('Security'),
      h(
        'p',
        {},
        h('a', { href: '#/login?next=/account/security' }, 'Log in'),
        ' to manage your sign-in methods.',
      ),
    );
    return;
  }
  const alert = buildAlert('security-error');
  const stepUp = createStepUp({
    actions: { reauthenticate, reauthenticateWithPasskey },
    // Read afresh at each prompt: the sections' copy lags behind a change made on this very page
    // (the authenticator app just confirmed, its recovery codes still shown), and the prompt then
    // asked for the password alone, which the server refused for want of a code (web review W3).
    factors: loadMfaStatus,
    until: ctx.signal,
  });
  const totp = h('section', { 'data-testid': 'totp-section', 'aria-labelledby': 'totp-heading' });
  const passkeys = h('section', { 'data-testid': 'passkeys-section', 'aria-labelledby': 'passkeys-heading' });
  ctx.main.append(pageHeading('Security'), alert.element, stepUp.element, totp, passkeys);

  /** Runs a sensitive change; asks the user to confirm it is them when the server wants that. */
  const sensitive = <T>(run: () => Promise<ApiResult<T>>): Promise<ApiResult<T>> => stepUp.sensitive(run);

  const refresh = async () => {
    const [loaded, keys] = await Promise.all([loadMfaStatus(), listPasskeys()]);
    if (ctx.signal.aborted) return;
    if (!loaded.ok) {
      alert.show(problemMessage(loaded.problem));
      return;
    }
    if (!keys.ok) {
      alert.show(problemMessage(keys.problem));
      return;
    }
    renderTotp(totp, loaded.data, { ctx, sensitive, refresh });
    renderPasskeys(passkeys, keys.data, { ctx, sensitive, refresh });
  };
  void refresh();
}

interface SectionDeps {
  ctx: PageContext;
  sensitive<T>(run: () => Promise<ApiResult<T>>): Promise<ApiResult<T>>;
  refresh(): Promise<void>;
}

function renderTotp(section: HTMLElement, status: MfaStatus, deps: SectionDeps): void {
  const alert = buildAlert('totp-error');
  const heading = h('h2', { id: 'totp-heading' }, 'Authenticator app');
  if (status.totp === 'on') {
    const code = buildField({
      name: 'code',
      label: 'Current code or a recovery code',
      required: true,
      testId: 'totp-off-code',
    });
    const off = h(
      'button',
      { type: 'submit', class: 'button button--danger', 'data-testid': 'totp-off-button' },
      'Turn off',
    );
    const form = h('form', { novalidate: true }, code.element, off);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!checkRequired([code], alert)) return;
      void disableTotp(code.input.value.trim()).then((result) => {
        if (!result.ok) showProblem(result.problem, [code], alert, { INVALID_OTP: 'code' });
        else void deps.refresh();
      });
    });
    setChildren(
      section,
      heading,
      h('p', { 'data-testid': 'totp-status' }, `On. ${status.recovery_codes_left} recovery codes left.`),
      alert.element,
      form,
    );
    return;
  }
  const start = h(
    'button',
    { type: 'button', class: 'button button--primary', 'data-testid': 'totp-start-button' },
    'Set up an authenticator app',
  );
  start.addEventListener('click', () => {
    alert.clear();
    void deps.sensitive(startTotp).then((result) => {
      if (deps.ctx.signal.aborted) return;
      if (!result.ok) {
        alert.show(problemMessage(result.problem));
        return;
      }
      showEnrolment(section, result.data, deps);
    });
  });
  setChildren(
    section,
    heading,
    h(
      'p',
      { 'data-testid': 'totp-status' },
      'Off. Add a second step to your sign-in with an app such as an authenticator.',
    ),
    alert.element,
    start,
  );
}

function showEnrolment(
  section: HTMLElement,
  enrolment: { secret: string; otpauth_uri: string },
  deps: SectionDeps,
): void {
  const alert = buildAlert('totp-confirm-error');
  const code = buildField({
    name: 'code',
    label: 'The 6-digit code the app shows',
    autocomplete: 'one-time-code',
    required: true,
    testId: 'totp-confirm-code',
  });
  code.input.setAttribute('inputmode', 'numeric');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'totp-confirm-button' },
    'Turn on',
  );
  const form = h('form', { novalidate: true }, alert.element, code.element, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!checkRequired([code], alert)) return;
    void deps
      .sensitive(() => confirmTotp(code.input.value.trim()))
      .then((result) => {
        if (deps.ctx.signal.aborted) return;
        if (!result.ok) {
          showProblem(result.problem, [code], alert, { INVALID_OTP: 'code' });
          return;
        }
        showRecoveryCodes(section, result.data.recovery_codes, deps);
      });
  });
  setChildren(
    section,
    h('h2', { id: 'totp-heading' }, 'Authenticator app'),
    h('p', {}, 'Scan this code with your authenticator app, or type the key below into it.'),
    qrCode(enrolment.otpauth_uri, 'QR code of your authenticator app key'),
    h('p', {}, 'Key: ', h('code', { 'data-testid': 'totp-secret' }, enrolment.secret)),
    form,
  );
}

function showRecoveryCodes(section: HTMLElement, codes: string[], deps: SectionDeps): void {
  // A file the browser saves: no inline script, and the codes never leave the page otherwise.
  const file = new Blob([`Recovery codes (each works once):\n\n${codes.join('\n')}\n`], {
    type: 'text/plain',
  });
  const url = URL.createObjectURL(file);
  deps.ctx.signal.addEventListener('abort', () => URL.revokeObjectURL(url), { once: true });
  const done = h(
    'button',
    { type: 'button', class: 'button button--primary', 'data-testid': 'recovery-done-button' },
    'Done',
  );
  done.addEventListener('click', () => void deps.refresh());
  setChildren(
    section,
    h('h2', { id: 'totp-heading' }, 'Authenticator app'),
    h(
      'p',
      { role: 'status', 'data-testid': 'totp-status' },
      'On. Keep these recovery codes somewhere safe: each signs you in once if you lose your phone. They are shown only now.',
    ),
    h(
      'ul',
      { class: 'recovery-codes', 'data-testid': 'recovery-codes' },
      ...codes.map((code) => h('li', {}, h('code', {}, code))),
    ),
    h(
      'p',
      {},
      h(
        'a',
        {
          href: url,
          download: 'recovery-codes.txt',
          class: 'button button--secondary',
          'data-testid': 'recovery-download',
        },
        'Download the codes',
      ),
    ),
    done,
  );
}

function renderPasskeys(section: HTMLElement, passkeys: Passkey[], deps: SectionDeps): void {
  const alert = buildAlert('passkey-error');
  const add = h(
    'button',
    { type: 'button', class: 'button button--primary', 'data-testid': 'passkey-add-button' },
    'Add a passkey',
  );
  add.addEventListener('click', () => {
    alert.clear();
    add.disabled = true;
    void deps.sensitive(addPasskey).then((result) => {
      if (deps.ctx.signal.aborted) return;
      add.disabled = false;
      if (!result.ok) alert.show(problemMessage(result.problem));
      else void deps.refresh();
    });
  });
  const items = passkeys.map((passkey) => {
    const remove = h(
      'button',
      { type: 'button', class: 'button button--link', 'data-testid': 'passkey-remove-button' },
      'Remove',
    );
    remove.addEventListener('click', () => {
      remove.disabled = true;
      void deps
        .sensitive(() => removePasskey(passkey.id))
        .then((result) => {
          if (deps.ctx.signal.aborted) return;
          remove.disabled = false;
          if (!result.ok) alert.show(problemMessage(result.problem));
          else void deps.refresh();
        });
    });
    const used =
      passkey.last_used_at === null
        ? 'never used'
        : `last used ${new Date(passkey.last_used_at).toLocaleString()}`;
    return h(
      'li',
      { 'data-testid': 'passkey-item' },
      `${passkey.name} (${used}${passkey.backed_up ? ', synced' : ''}) `,
      remove,
    );
  });
  setChildren(
    section,
    h('h2', { id: 'passkeys-heading' }, 'Passkeys'),
    h('p', {}, 'A passkey signs you in without a password, with your fingerprint, face or device PIN.'),
    alert.element,
    passkeys.length === 0
      ? h('p', { 'data-testid': 'passkeys-empty' }, 'No passkeys yet.')
      : h('ul', { 'data-testid': 'passkey-list' }, ...items),
    add,
  );
}
