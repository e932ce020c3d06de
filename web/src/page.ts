/**
 * What every page gets from the shell, and the pieces every page starts with.
 */
import type { AccountActions } from './account-actions.js';
import { h } from './dom.js';
import type { RoomActions } from './room-actions.js';
import type { AppStore } from './store.js';

/**
 * Handed to a page's render function. A page reads shared state from `store` (inside `watch`, so
 * it follows changes) and changes it only through the actions.
 */
export interface PageContext {
  /** The `<main>` element, emptied for this page. */
  readonly main: HTMLElement;
  /** The one state store: who is signed in, and the server's public policy. */
  readonly store: AppStore;
  /** Log in, sign up, log out: the writers of `store.user`. */
  readonly account: AccountActions;
  /** Create, join, claim a seat. */
  readonly rooms: RoomActions;
  /** Aborted when the user leaves the page: stop streams and ignore late answers. */
  readonly signal: AbortSignal;
  /** A one-line message left by the previous page ("You left the room."), shown once. */
  readonly notice: string | undefined;
  /** Leaves a message for the next page, then goes to `hash`. */
  navigate(hash: string, notice?: string): void;
}

/**
 * The page heading. It takes focus when a page opens, so screen reader users hear where they
 * landed (a hash change is otherwise silent).
 */
export function pageHeading(text: string, testId?: string): HTMLHeadingElement {
  return h('h1', { tabindex: '-1', 'data-testid': testId }, text);
}

/** The previous page's notice, if any, as a status message. */
export function noticeBanner(notice: string | undefined): HTMLElement | null {
  if (notice === undefined) return null;
  return h('p', { class: 'notice', role: 'status', 'data-testid': 'notice' }, notice);
}

/** A link styled as a button. */
export function linkButton(
  text: string,
  href: string,
  testId?: string,
  variant = 'primary',
): HTMLAnchorElement {
  return h('a', { class: `button button--${variant}`, href, 'data-testid': testId }, text);
}

/** `document.title` for a page. */
export function setTitle(page: string): void {
  document.title = page === '' ? 'Dicery' : `${page} · Dicery`;
}
