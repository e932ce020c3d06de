/**
 * What every section of the account page gets. The page (`page-account.ts`) is a list of sections;
 * a feature adds its own (second factors, connected apps) without touching the others.
 */
import type * as AccountApi from '../account-api.js';
import { h } from '../dom.js';
import type { AppStore } from '../store.js';

/** The account calls, as one object so tests pass fakes (each section takes the `Pick` it uses). */
export type AccountActions = typeof AccountApi;

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
