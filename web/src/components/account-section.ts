/**
 * What every section of the account page gets. The page (`page-account.ts`) is a list of sections;
 * a feature adds its own (second factors, connected apps) without touching the others.
 */
import type * as AccountApi from '../account-api.js';
import { h } from '../dom.js';
import type { Alert } from '../forms.js';
import type { Problem } from '../problem.js';
import type { AppStore } from '../store.js';
import { createStepUp, type StepUp, type StepUpActions } from './step-up.js';

/**
 * The account calls, as one object so tests pass fakes (each section takes the `Pick` it uses),
 * with the step-up calls that sensitive sections make when the server answers STEP_UP_REQUIRED.
 */
export type AccountActions = typeof AccountApi & StepUpActions;

/** Handed to each section; `A` narrows the calls a section makes, so its tests pass only those. */
export interface AccountSectionContext<A = AccountActions> {
  /** Who is signed in (sections that change the account write the new user here). */
  readonly store: AppStore;
  readonly actions: A;
  /** Aborted when the page is left. */
  readonly until: AbortSignal;
  /** The session ended (signed out everywhere, account deleted): go home and say `notice`. */
  signedOut(notice: string): void;
}

/** A section: a `<section>` with its heading, built once. */
export type AccountSection = (ctx: AccountSectionContext) => HTMLElement;

/** The `<section>` frame every account section uses. */
export function sectionFrame(testId: string, title: string, ...children: Node[]): HTMLElement {
  return h('section', { class: 'card', 'data-testid': testId }, h('h2', {}, title), ...children);
}

/** A status line (`role="status"`) that a section writes its outcome to. */
export function statusLine(testId: string): HTMLElement {
  return h('p', { class: 'notice', role: 'status', 'data-testid': testId, hidden: true });
}

/** Shows `text` in a {@link statusLine}. */
export function say(line: HTMLElement, text: string): void {
  line.textContent = text;
  line.hidden = false;
}

/**
 * The "confirm it's you" prompt of a section's sensitive form (`step-up.ts`): the account's
 * factors are read only when the server asks to step up, and the prompt sits in the section.
 */
export function sectionStepUp(ctx: AccountSectionContext<StepUpActions>): StepUp {
  const { actions, until } = ctx;
  return createStepUp({
    actions,
    factors: () => actions.loadMfaStatus(),
    until,
    headingLevel: 'h3',
    passkeyOnlyText: 'This change needs one of your passkeys.',
  });
}

/**
 * Shows why a sensitive change did not happen when the person is not confirmed; false for any
 * other answer, which the section shows itself. Cancelled: the form stays as it was, `cancelled`
 * goes to `line` and focus back to `button` (the prompt that had it is gone). Refused again after
 * confirming (the account's factors changed meanwhile): plain words in `alert`, since the server's
 * text names API routes, and the next submit asks again.
 */
export function showUnconfirmed(
  failed: { problem: Problem; cancelled?: true },
  parts: { line: HTMLElement; alert: Alert; button: HTMLButtonElement; cancelled: string },
): boolean {
  if (failed.cancelled === true) {
    say(parts.line, parts.cancelled);
    parts.button.focus();
    return true;
  }
  if (failed.problem.code !== 'STEP_UP_REQUIRED') return false;
  parts.alert.show('This change still needs you to confirm it’s you. Please try again.');
  parts.button.focus();
  return true;
}
