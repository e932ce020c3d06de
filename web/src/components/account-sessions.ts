/**
 * Account page: the account's live sessions, "sign out" on each other one, and "sign out
 * everywhere" (this browser included).
 */
import { signal } from '@preact/signals-core';
import type { SessionView } from '../account-api.js';
import { h, setChildren } from '../dom.js';
import { buildAlert, showProblem } from '../forms.js';
import type { AccountActions, AccountSectionContext } from './account-section.js';
import { sectionFrame } from './account-section.js';
import { watch } from './watch.js';

/** A session's device, as far as its user agent says (capped: it is the client's text). */
function describeSession(session: SessionView): string {
  const agent = session.user_agent === null ? 'Unknown device' : session.user_agent.slice(0, 120);
  return `${agent}${session.ip === null ? '' : ` · ${session.ip}`}`;
}

/** The sessions section. */
export function accountSessions(
  ctx: AccountSectionContext<Pick<AccountActions, 'listSessions' | 'endSession' | 'logOutEverywhere'>>,
): HTMLElement {
  const { actions, until } = ctx;
  const sessions = signal<SessionView[] | null>(null);
  const alert = buildAlert('sessions-error');
  const list = h('ul', { class: 'plain-list', 'data-testid': 'session-list' });

  const load = async () => {
    const result = await actions.listSessions();
    if (until.aborted) return;
    if (result.ok) sessions.value = result.data;
    else showProblem(result.problem, [], alert);
  };

  watch(until, () => {
    const current = sessions.value;
    if (current === null) {
      setChildren(list, h('li', { role: 'status' }, 'Loading…'));
      return;
    }
    setChildren(
      list,
      ...current.map((session) => {
        const item = h(
          'li',
          { 'data-testid': 'session-item' },
          h('span', {}, describeSession(session)),
          ' ',
          h('span', { class: 'muted' }, `since ${new Date(session.created_at).toLocaleString()}`),
        );
        if (session.current) {
          item.append(' ', h('strong', { 'data-testid': 'session-current' }, '(this browser)'));
          return item;
        }
        const end = h(
          'button',
          { type: 'button', class: 'button button--link', 'data-testid': 'end-session' },
          'Sign out',
        );
        end.addEventListener('click', () => {
          end.disabled = true;
          alert.clear();
          void actions.endSession(session.id).then((result) => {
            if (until.aborted) return;
            // 404: it ended meanwhile; either way it is gone.
            if (result.ok || result.problem.status === 404) {
              sessions.value = (sessions.peek() ?? []).filter((s) => s.id !== session.id);
            } else {
              end.disabled = false;
              showProblem(result.problem, [], alert);
            }
          });
        });
        item.append(' ', end);
        return item;
      }),
    );
  });

  const everywhere = h(
    'button',
    { type: 'button', class: 'button button--danger', 'data-testid': 'logout-everywhere' },
    'Sign out everywhere',
  );
  everywhere.addEventListener('click', () => {
    everywhere.disabled = true;
    alert.clear();
    void actions.logOutEverywhere().then((result) => {
      if (until.aborted) return;
      // 401: this session had already ended, which is what was asked.
      if (result.ok || result.problem.status === 401) {
        ctx.signedOut('You are signed out on every device.');
        return;
      }
      everywhere.disabled = false;
      showProblem(result.problem, [], alert);
    });
  });
  void load();
  return sectionFrame(
    'account-sessions',
    'Where you are signed in',
    alert.element,
    list,
    h('p', {}, everywhere),
  );
}
