/** Admin console: the audit log, newest first, filtered by event, actor, target and time. */
import { signal } from '@preact/signals-core';
import type * as AccountApi from '../account-api.js';
import type { AuditEntryView, Page } from '../account-api.js';
import { h, setChildren } from '../dom.js';
import { buildAlert, buildField, setBusy, showProblem } from '../forms.js';
import { watch } from './watch.js';

/** The call this component makes. */
export type AdminAuditActions = Pick<typeof AccountApi, 'listAudit'>;

const PAGE_SIZE = 50;

/** `2026-12-02T10:00` (a `datetime-local` value, local time) as an RFC 3339 instant, or undefined. */
function instant(value: string): string | undefined {
  if (value === '') return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? undefined : time.toISOString();
}

/** The audit section. */
export function adminAudit(actions: AdminAuditActions, until: AbortSignal): HTMLElement {
  const page = signal<Page<AuditEntryView> | null>(null);
  const alert = buildAlert('admin-audit-error');
  const event = buildField({
    name: 'event',
    label: 'Event',
    autocomplete: 'off',
    placeholder: 'login_failed',
    spellcheck: false,
    testId: 'audit-event-input',
  });
  const actor = buildField({
    name: 'actor_id',
    label: 'Actor id',
    autocomplete: 'off',
    testId: 'audit-actor-input',
  });
  const target = buildField({
    name: 'target_id',
    label: 'Target id',
    autocomplete: 'off',
    testId: 'audit-target-input',
  });
  const since = buildField({ name: 'since', label: 'From', testId: 'audit-since-input' });
  const before = buildField({ name: 'until', label: 'Until', testId: 'audit-until-input' });
  since.input.type = 'datetime-local';
  before.input.type = 'datetime-local';
  const fields = [event, actor, target, since, before];
  const apply = h(
    'button',
    { type: 'submit', class: 'button button--secondary', 'data-testid': 'audit-filter-button' },
    'Filter',
  );
  const form = h(
    'form',
    { novalidate: true, role: 'search', 'data-testid': 'audit-filters' },
    ...fields.map((f) => f.element),
    apply,
  );
  const table = h('div', { 'data-testid': 'audit-table' });
  const more = h(
    'button',
    { type: 'button', class: 'button button--link', 'data-testid': 'audit-more' },
    'Older entries',
  );

  const load = async (offset: number) => {
    alert.clear();
    setBusy(form, apply, true, 'Loading…');
    const result = await actions.listAudit({
      event: event.input.value.trim(),
      actor_id: actor.input.value.trim(),
      target_id: target.input.value.trim(),
      since: instant(since.input.value),
      until: instant(before.input.value),
      offset,
      limit: PAGE_SIZE,
    });
    if (until.aborted) return;
    setBusy(form, apply, false, '');
    if (!result.ok) {
      showProblem(result.problem, fields, alert);
      return;
    }
    page.value = result.data;
  };

  watch(until, () => {
    const current = page.value;
    if (current === null) {
      setChildren(table, h('p', { role: 'status' }, 'Loading…'));
      more.hidden = true;
      return;
    }
    more.hidden = current.offset + current.items.length >= current.total;
    if (current.items.length === 0) {
      setChildren(table, h('p', {}, 'No entry matches.'));
      return;
    }
    setChildren(
      table,
      h(
        'p',
        { class: 'muted' },
        `${current.offset + 1}–${current.offset + current.items.length} of ${current.total}`,
      ),
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h('tr', {}, ...['When', 'Event', 'Actor', 'Target', 'IP'].map((t) => h('th', { scope: 'col' }, t))),
        ),
        h(
          'tbody',
          {},
          ...current.items.map((entry) =>
            h(
              'tr',
              { 'data-testid': 'audit-row' },
              h('td', {}, new Date(entry.created_at).toLocaleString()),
              h('td', { 'data-testid': 'audit-event' }, entry.event),
              h('td', {}, entry.actor_id ?? '—'),
              h('td', {}, entry.target_id ?? '—'),
              h('td', {}, entry.ip ?? '—'),
            ),
          ),
        ),
      ),
    );
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void load(0);
  });
  more.addEventListener('click', () => {
    const current = page.peek();
    if (current !== null) void load(current.offset + current.items.length);
  });
  void load(0);
  return h('section', { 'data-testid': 'admin-audit' }, alert.element, form, table, more);
}
