/**
 * The "confirm it's you" step-up, shared by the security page and the account page's sensitive
 * forms. The server refuses a sensitive change with 401 `STEP_UP_REQUIRED` (RFC 9470
 * `insufficient_user_authentication`) when the sign-in is older than STEP_UP_MAX_AGE, or when an
 * account holding a second factor has a session that never proved one (`src/sessions/step-up.ts`).
 * The remedy is a re-authentication on this session (`POST /auth/reauthenticate`, or
 * `/auth/reauthenticate/passkey`), then the same request once more.
 */
import type { ApiResult } from '../api.js';
import { h, setChildren, uniqueId } from '../dom.js';
import { buildAlert, buildField, checkRequired, showProblem } from '../forms.js';
import { type Problem, problemMessage } from '../problem.js';
import type * as SecurityApi from '../security-api.js';
import type { MfaStatus } from '../security-api.js';

/** The re-authentication calls the prompt makes (an object, so tests pass fakes). */
export type ReauthenticateActions = Pick<typeof SecurityApi, 'reauthenticate' | 'reauthenticateWithPasskey'>;

/** The re-authentication calls, and the read of the account's factors that picks the prompt's fields. */
export type StepUpActions = ReauthenticateActions & Pick<typeof SecurityApi, 'loadMfaStatus'>;

/**
 * A sensitive change's answer: the server's (after at most one retry), or, with `cancelled`, the
 * first STEP_UP_REQUIRED refusal when the person closed the prompt instead of confirming.
 */
export type SensitiveResult<T> = ApiResult<T> | { ok: false; problem: Problem; cancelled: true };

/** How {@link createStepUp} builds its prompt. */
export interface StepUpOptions {
  readonly actions: ReauthenticateActions;
  /**
   * The account's factors, read each time a change asks to step up (after its refusal, not
   * before), so the prompt offers what the account holds then. A failed read is handed back as
   * the change's answer: a prompt guessed without it could ask for a password that cannot pass.
   */
  factors(): Promise<ApiResult<MfaStatus>>;
  /** Aborted when the page is left: late answers are ignored. */
  readonly until: AbortSignal;
  /**
   * The prompt heading's level, below the heading of what it sits in.
   * @default 'h2'
   */
  readonly headingLevel?: 'h2' | 'h3';
  /**
   * The line under the heading when only a passkey can confirm (see {@link promptFor}).
   * @default 'Changing how you sign in needs one of your passkeys.'
   */
  readonly passkeyOnlyText?: string;
}

/** A prompt, hidden until a change asks for it, and the wrapper that runs changes through it. */
export interface StepUp {
  /** The prompt's `<section>` (hidden when idle): put it where the change is made. */
  readonly element: HTMLElement;
  /**
   * Runs `run`; on `STEP_UP_REQUIRED` reads the factors, shows the prompt, and once the person
   * confirmed runs `run` once more (a second refusal is returned, never asked again: no loop).
   */
  sensitive<T>(run: () => Promise<ApiResult<T>>): Promise<SensitiveResult<T>>;
}

/** What the prompt asks for, from the account's factors. */
export interface StepUpPrompt {
  /** The password and a code from the authenticator app (the account has one turned on). */
  readonly withCode: boolean;
  /**
   * Only the passkey button: the account's second factors are passkeys alone, and a password
   * re-authentication would be recent but prove no factor, which the server then refuses again.
   */
  readonly passkeyOnly: boolean;
  /** The passkey button: the account holds a passkey (web review 2026-12-06: it was offered to all). */
  readonly withPasskey: boolean;
}

/** Picks the prompt for an account's factors. */
export function promptFor(status: MfaStatus): StepUpPrompt {
  return {
    withCode: status.totp === 'on',
    passkeyOnly: status.totp !== 'on' && status.passkeys > 0,
    withPasskey: status.passkeys > 0,
  };
}

/** Builds the "confirm it's you" prompt and its retry-once wrapper. */
export function createStepUp(options: StepUpOptions): StepUp {
  const { actions, until } = options;
  const headingId = uniqueId('step-up-heading');
  const element = h('section', {
    class: 'step-up',
    'data-testid': 'step-up',
    'aria-labelledby': headingId,
    hidden: true,
  });

  /** Shows the prompt; resolves true once re-authenticated, false on Cancel. */
  const ask = (prompt: StepUpPrompt): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const { withCode, passkeyOnly, withPasskey: offerPasskey } = prompt;
      const alert = buildAlert('step-up-error');
      const password = buildField({
        name: 'current_password',
        label: 'Password',
        type: 'password',
        autocomplete: 'current-password',
        required: true,
        testId: 'step-up-password',
      });
      const code = buildField({
        name: 'otp',
        label: 'Code from your authenticator app',
        autocomplete: 'one-time-code',
        required: true,
        testId: 'step-up-otp',
      });
      const fields = passkeyOnly ? [] : withCode ? [password, code] : [password];
      const submit = h(
        'button',
        { type: 'submit', class: 'button button--primary', 'data-testid': 'step-up-button' },
        'Confirm',
      );
      const withPasskey = h(
        'button',
        { type: 'button', class: 'button button--secondary', 'data-testid': 'step-up-passkey-button' },
        'Use a passkey',
      );
      const cancel = h(
        'button',
        { type: 'button', class: 'button button--link', 'data-testid': 'step-up-cancel' },
        'Cancel',
      );
      const form = h(
        'form',
        { novalidate: true },
        alert.element,
        ...fields.map((f) => f.element),
        ...(passkeyOnly ? [] : [submit]),
        ...(offerPasskey ? [withPasskey] : []),
        cancel,
      );
      const close = (ok: boolean) => {
        element.hidden = true;
        element.replaceChildren();
        resolve(ok);
      };
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        if (!checkRequired(fields, alert)) return;
        void actions
          .reauthenticate(password.input.value, withCode ? code.input.value.trim() : undefined)
          .then((result) => {
            if (until.aborted) return;
            if (!result.ok)
              showProblem(result.problem, fields, alert, {
                INVALID_CURRENT_PASSWORD: 'current_password',
                INVALID_OTP: 'otp',
              });
            else close(true);
          });
      });
      withPasskey.addEventListener('click', () => {
        void actions.reauthenticateWithPasskey().then((result) => {
          if (until.aborted) return;
          if (!result.ok) alert.show(problemMessage(result.problem));
          else close(true);
        });
      });
      cancel.addEventListener('click', () => close(false));
      const heading = h(options.headingLevel ?? 'h2', { id: headingId }, 'Confirm it’s you');
      setChildren(
        element,
        heading,
        h(
          'p',
          {},
          passkeyOnly
            ? (options.passkeyOnlyText ?? 'Changing how you sign in needs one of your passkeys.')
            : 'This change needs a recent sign-in.',
        ),
        form,
      );
      element.hidden = false;
      (passkeyOnly ? withPasskey : password.input).focus();
    });

  return {
    element,
    async sensitive<T>(run: () => Promise<ApiResult<T>>): Promise<SensitiveResult<T>> {
      const first = await run();
      if (first.ok || first.problem.code !== 'STEP_UP_REQUIRED') return first;
      const factors = await options.factors();
      if (until.aborted) return first;
      if (!factors.ok) return factors;
      if (!(await ask(promptFor(factors.data)))) {
        // The refusal's own text asks to confirm, which the person just declined: say what happened.
        const problem = { ...first.problem, detail: 'Nothing was changed: you closed the confirmation.' };
        return { ok: false, problem, cancelled: true };
      }
      // Once only: a second refusal (say the factors changed meanwhile) goes back to the caller.
      return run();
    },
  };
}
