/**
 * `#/account`: the signed-in user's account, as a list of sections. Features with their own
 * section (second factors, connected apps) add it to {@link ACCOUNT_SECTIONS}.
 */
import * as accountApi from './account-api.js';
import { accountDelete } from './components/account-delete.js';
import { accountEmail } from './components/account-email.js';
import { accountPassword } from './components/account-password.js';
import { accountProfile } from './components/account-profile.js';
import type { AccountSection } from './components/account-section.js';
import { accountSessions } from './components/account-sessions.js';
import { accountConnectedApps } from './components/connected-apps.js';
import { h } from './dom.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { loginHash } from './routes.js';
import { loadMfaStatus, reauthenticate, reauthenticateWithPasskey } from './security-api.js';
import type { AppStore } from './store.js';

/** The account page's sections, top to bottom. */
export const ACCOUNT_SECTIONS: readonly AccountSection[] = [
  accountProfile,
  accountPassword,
  accountEmail,
  accountSessions,
  accountConnectedApps,
  accountDelete,
];

/** Renders the account page (or a link to log in). */
export function renderAccount(ctx: PageContext, store: AppStore): void {
  setTitle('Your account');
  ctx.main.append(pageHeading('Your account'), noticeBanner(ctx.notice) ?? '');
  if (store.user.peek() === null) {
    ctx.main.append(h('p', {}, 'Please ', h('a', { href: loginHash('/account') }, 'log in'), ' first.'));
    return;
  }
  // The password section checks the server's lengths (`GET /auth/password-policy`).
  void ctx.account.loadPasswordPolicy();
  const sectionContext = {
    store,
    actions: { ...accountApi, loadMfaStatus, reauthenticate, reauthenticateWithPasskey },
    until: ctx.signal,
    signedOut(notice: string) {
      ctx.account.recordUser(null);
      ctx.navigate('#/', notice);
    },
  };
  ctx.main.append(...ACCOUNT_SECTIONS.map((section) => section(sectionContext)));
}
