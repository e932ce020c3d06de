/**
 * `#/admin/…`: the admin console (users, audit log, clothes catalogue), for admins and super
 * admins. The server guards every call; this page only hides itself from others.
 */
import * as accountApi from './account-api.js';
import { adminAudit } from './components/admin-audit.js';
import { adminClothes } from './components/admin-clothes.js';
import { adminUsers } from './components/admin-users.js';
import { h } from './dom.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { type AdminSection, adminHash, loginHash } from './routes.js';
import { isAdmin } from './user-roles.js';

const TITLES: Record<AdminSection, string> = { users: 'Users', audit: 'Audit log', clothes: 'Clothes' };

/** Renders the console's `section`. */
export function renderAdmin(ctx: PageContext, section: AdminSection): void {
  setTitle(`Admin · ${TITLES[section]}`);
  ctx.main.append(pageHeading(`Admin · ${TITLES[section]}`), noticeBanner(ctx.notice) ?? '');
  const user = ctx.store.user.peek();
  if (user === null) {
    ctx.main.append(
      h('p', {}, 'Please ', h('a', { href: loginHash(`/admin/${section}`) }, 'log in'), ' first.'),
    );
    return;
  }
  if (!isAdmin(user)) {
    ctx.main.append(h('p', { role: 'alert', class: 'alert' }, 'This console is for administrators.'));
    return;
  }
  const tabs = h(
    'nav',
    { 'aria-label': 'Admin sections', class: 'tabs', 'data-testid': 'admin-tabs' },
    ...(Object.keys(TITLES) as AdminSection[]).map((name) =>
      h(
        'a',
        {
          href: adminHash(name),
          'aria-current': name === section ? 'page' : undefined,
          'data-testid': `admin-tab-${name}`,
        },
        TITLES[name],
      ),
    ),
  );
  const body =
    section === 'users'
      ? adminUsers(accountApi, user, ctx.signal)
      : section === 'audit'
        ? adminAudit(accountApi, ctx.signal)
        : adminClothes(accountApi, ctx.signal);
  ctx.main.append(tabs, body);
}
