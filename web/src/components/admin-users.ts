/**
 * Admin console: accounts. Search by email prefix; per account change the role, disable or
 * enable it (its sessions end at once on the server), re-send the verification mail, or mail a
 * reset link. The server decides who may manage whom; its refusals are shown as they come.
 */
import { signal } from '@preact/signals-core';
import type * as AccountApi from '../account-api.js';
import type { Page } from '../account-api.js';
import { h, setChildren } from '../dom.js';
import { buildAlert, buildField, setBusy, showProblem } from '../forms.js';
import type { Problem } from '../problem.js';
import { ROLES } from '../shared.js';
import type { User } from '../types.js';
import { watch } from './watch.js';

/** The calls this component makes. */
export type AdminUserActions = Pick<
  typeof AccountApi,
  'listUsers' | 'updateUser' | 'resendVerification' | 'sendPasswordReset'
>;

const PAGE_SIZE = 50;

/** The users section; `you` is the signed-in admin (their own row offers no disable). */
export function adminUsers(actions: AdminUserActions, you: User, until: AbortSignal): HTMLElement {
  const page = signal<Page<User> | null>(null);
  const alert = buildAlert('admin-users-error');
  const status = h('p', {
    class: 'notice',
    role: 'status',
    'data-testid': 'admin-users-status',
    hidden: true,
  });
  const search = buildField({
    name: 'email_prefix',
    label: 'Email starts with',
    type: 'text',
    autocomplete: 'off',
    spellcheck: false,
    testId: 'user-search-input',
  });
  const searchButton = h(
    'button',
    { type: 'submit', class: 'button button--secondary', 'data-testid': 'user-search-button' },
    'Search',
  );
  const form = h(
    'form',
    { novalidate: true, role: 'search', 'data-testid': 'user-search' },
    search.element,
    searchButton,
  );
  const table = h('div', { 'data-testid': 'user-table' });

  const fail = (problem: Problem) => showProblem(problem, [], alert);
  const tell = (text: string) => {
    status.textContent = text;
    status.hidden = false;
  };
  // A list answer may have been read before a change answered meanwhile (disable, role): the
  // changes made since it was asked are laid over it, or the stale row would come back. Only the
  // newest search draws.
  let searches = 0;
  let changedSince = new Map<string, User>();
  const load = async () => {
    alert.clear();
    setBusy(form, searchButton, true, 'Searching…');
    searches += 1;
    const mine = searches;
    const changes = new Map<string, User>();
    changedSince = changes;
    const result = await actions.listUsers({ email_prefix: search.input.value.trim(), limit: PAGE_SIZE });
    if (until.aborted || mine !== searches) return;
    setBusy(form, searchButton, false, '');
    if (result.ok) {
      page.value = { ...result.data, items: result.data.items.map((u) => changes.get(u.id) ?? u) };
    } else fail(result.problem);
  };
  /** Puts `user` (as the server now has it) into the list. */
  const replace = (user: User) => {
    changedSince.set(user.id, user);
    const current = page.peek();
    if (current === null) return;
    page.value = { ...current, items: current.items.map((u) => (u.id === user.id ? user : u)) };
  };
  const act = (button: HTMLButtonElement, run: () => Promise<void>) => {
    button.disabled = true;
    alert.clear();
    void run().finally(() => {
      button.disabled = false;
    });
  };

  const row = (user: User) => {
    const role = h('select', { 'aria-label': `Role of ${user.email}`, 'data-testid': 'user-role' });
    for (const name of ROLES) {
      const option = h('option', { value: name }, name);
      option.selected = name === user.role;
      role.append(option);
    }
    role.addEventListener('change', () => {
      role.disabled = true;
      void actions.updateUser(user.id, { role: role.value }).then((result) => {
        if (until.aborted) return;
        role.disabled = false;
        if (result.ok) {
          replace(result.data);
          tell(`${user.email} is now ${result.data.role}.`);
        } else {
          role.value = user.role;
          fail(result.problem);
        }
      });
    });
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'button button--link',
        'data-testid': 'user-toggle-active',
        // Named with the account, like the role menu: a screen reader's list of buttons otherwise
        // reads "Disable, Disable, Disable" (web review 2026-12-06).
        'aria-label': `${user.is_active ? 'Disable' : 'Enable'} ${user.email}`,
      },
      user.is_active ? 'Disable' : 'Enable',
    );
    toggle.hidden = user.id === you.id;
    toggle.addEventListener('click', () =>
      act(toggle, async () => {
        const result = await actions.updateUser(user.id, { is_active: !user.is_active });
        if (until.aborted) return;
        if (!result.ok) return fail(result.problem);
        replace(result.data);
        tell(
          result.data.is_active
            ? `${user.email} is enabled.`
            : `${user.email} is disabled; their sessions ended.`,
        );
      }),
    );
    const verify = h(
      'button',
      {
        type: 'button',
        class: 'button button--link',
        'data-testid': 'user-resend-verification',
        'aria-label': `Resend verification to ${user.email}`,
      },
      'Resend verification',
    );
    verify.hidden = user.email_verified;
    verify.addEventListener('click', () =>
      act(verify, async () => {
        const result = await actions.resendVerification(user.id);
        if (until.aborted) return;
        if (result.ok) tell(`A verification link was mailed to ${user.email}.`);
        else fail(result.problem);
      }),
    );
    const reset = h(
      'button',
      {
        type: 'button',
        class: 'button button--link',
        'data-testid': 'user-send-reset',
        'aria-label': `Send a password reset link to ${user.email}`,
      },
      'Send reset link',
    );
    reset.addEventListener('click', () =>
      act(reset, async () => {
        const result = await actions.sendPasswordReset(user.id);
        if (until.aborted) return;
        if (result.ok) tell(`A password reset link was mailed to ${user.email}.`);
        else fail(result.problem);
      }),
    );
    return h(
      'tr',
      { 'data-testid': 'user-row', 'data-email': user.email },
      h('td', {}, user.email, user.full_name === null ? '' : h('div', { class: 'muted' }, user.full_name)),
      h('td', {}, role),
      h('td', { 'data-testid': 'user-state' }, user.is_active ? 'active' : 'disabled'),
      h('td', {}, user.email_verified ? 'confirmed' : 'not confirmed'),
      h('td', {}, toggle, ' ', verify, ' ', reset),
    );
  };

  watch(until, () => {
    const current = page.value;
    if (current === null) {
      setChildren(table, h('p', { role: 'status' }, 'Loading…'));
      return;
    }
    if (current.items.length === 0) {
      setChildren(table, h('p', {}, 'No account matches.'));
      return;
    }
    setChildren(
      table,
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Account', 'Role', 'State', 'Email', 'Actions'].map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        h('tbody', {}, ...current.items.map(row)),
      ),
      current.total > current.items.length
        ? h(
            'p',
            { class: 'muted' },
            `Showing ${current.items.length} of ${current.total}; narrow the search.`,
          )
        : null,
    );
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void load();
  });
  void load();
  return h('section', { 'data-testid': 'admin-users' }, alert.element, status, form, table);
}
