/**
 * The password lengths the server asks, as it publishes them (`GET /auth/password-policy`, kept in
 * `store.passwordPolicy`): every form that sets a password checks them here only to answer sooner.
 * Until the policy is known (or when the server could not say) the server alone checks, and its
 * answer always counts, so an operator's `PASSWORD_MIN_LENGTH` is never contradicted by the page.
 */
import type { ReadonlySignal } from '@preact/signals-core';
import { watch } from './components/watch.js';
import { type Alert, buildField, type Field, showProblem } from './forms.js';
import { type Problem, toProblem } from './problem.js';
import type { PasswordPolicy } from './types.js';

/** The hint under a new-password field: the lengths once known, a general advice before. */
export function passwordHint(policy: PasswordPolicy | null): string {
  return policy === null
    ? 'A long passphrase that is not a commonly used password.'
    : `At least ${policy.min_length} characters, and not a commonly used password.`;
}

/**
 * A `WEAK_PASSWORD` problem when `raw` breaks the policy's lengths, counted as the server counts
 * (code points after NFKC); none when the policy is unknown.
 */
export function passwordLengthProblem(raw: string, policy: PasswordPolicy | null): Problem | undefined {
  if (policy === null) return undefined;
  const length = [...raw.normalize('NFKC')].length;
  const detail =
    length < policy.min_length
      ? `The password must be at least ${policy.min_length} characters long.`
      : length > policy.max_length
        ? `The password must be at most ${policy.max_length} characters long.`
        : undefined;
  return detail === undefined ? undefined : toProblem(400, { detail, code: 'WEAK_PASSWORD' });
}

/**
 * Keeps a new-password field's hint and `minlength` in step with `policy` until `until` aborts.
 * `minlength` only informs assistive tech and password managers (the forms are `novalidate`);
 * no `maxlength`: it would cut a pasted passphrase silently, and the server never truncates.
 */
export function followPasswordPolicy(
  field: Field,
  policy: ReadonlySignal<PasswordPolicy | null>,
  until: AbortSignal,
): void {
  const hint = field.element.querySelector('.field-hint');
  watch(until, () => {
    const current = policy.value;
    if (hint !== null) hint.textContent = passwordHint(current);
    if (current === null) field.input.removeAttribute('minlength');
    else field.input.minLength = current.min_length;
  });
}

/**
 * A field for choosing a password (`autocomplete="new-password"`, the policy's hint), kept in
 * step with `policy` until `until` aborts.
 */
export function buildNewPasswordField(
  spec: { name: string; label: string; testId: string },
  policy: ReadonlySignal<PasswordPolicy | null>,
  until: AbortSignal,
): Field {
  const field = buildField({
    ...spec,
    type: 'password',
    autocomplete: 'new-password',
    required: true,
    hint: passwordHint(null),
  });
  followPasswordPolicy(field, policy, until);
  return field;
}

/**
 * Checks `field`'s value against the policy's lengths before it is sent, and shows the problem on
 * it (among the form's `fields`) when it breaks them: true when the value may go to the server.
 */
export function passwordLengthAccepted(
  field: Field,
  fields: readonly Field[],
  policy: PasswordPolicy | null,
  alert: Alert,
): boolean {
  const problem = passwordLengthProblem(field.input.value, policy);
  if (problem === undefined) return true;
  showProblem(problem, fields, alert, { WEAK_PASSWORD: field.input.name });
  return false;
}
