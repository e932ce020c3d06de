// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import type { AuditEntryView, Clothing, Page } from '../../../web/src/account-api.js';
import type { ApiResult } from '../../../web/src/api.js';
import { adminAudit } from '../../../web/src/components/admin-audit.js';
import { adminClothes } from '../../../web/src/components/admin-clothes.js';
import { adminUsers } from '../../../web/src/components/admin-users.js';
import type { User } from '../../../web/src/types.js';
import { isAdmin } from '../../../web/src/user-roles.js';
import { problemOf, settle } from '../fixtures.js';

const base: User = {
  id: 'admin',
  email: 'admin@example.com',
  full_name: null,
  role: 'admin',
  is_active: true,
  email_verified: true,
  created_at: '2026-01-01T00:00:00.000Z',
};
const bob: User = { ...base, id: 'bob', email: 'bob@example.com', role: 'user', email_verified: false };

const ok = <T>(data: T, status = 200): ApiResult<T> => ({ ok: true, status, data });
const pageOf = <T>(items: T[]): Page<T> => ({ items, total: items.length, limit: 50, offset: 0 });

function byTestId<T extends HTMLElement>(root: ParentNode, testId: string): T {
  const found = root.querySelector<T>(`[data-testid="${testId}"]`);
  if (found === null) throw new Error(`no ${testId}`);
  return found;
}

const rowOf = (root: HTMLElement, email: string) => {
  const row = root.querySelector<HTMLElement>(`[data-testid="user-row"][data-email="${email}"]`);
  if (row === null) throw new Error(`no row for ${email}`);
  return row;
};

describe('admin console', () => {
  it('shows the console to admins and super admins only', () => {
    expect([null, { ...base, role: 'user' }, base, { ...base, role: 'super_admin' }].map(isAdmin)).toEqual([
      false,
      false,
      true,
      true,
    ]);
    expect(isAdmin({ ...base, role: 'root' })).toBe(false);
  });

  it('users: searches, disables, changes a role, resends verification and sends a reset', async () => {
    const actions = {
      listUsers: vi.fn(async () => ok(pageOf([base, bob]))),
      updateUser: vi.fn(async (_id: string, change: { role?: string; is_active?: boolean }) =>
        ok({ ...bob, ...change }),
      ),
      resendVerification: vi.fn(async () => ok(undefined, 202)),
      sendPasswordReset: vi.fn(async () => ok(undefined, 202)),
    };
    const section = adminUsers(actions, base, new AbortController().signal);
    await settle();
    expect(actions.listUsers).toHaveBeenCalledWith({ email_prefix: '', limit: 50 });
    // No "Disable" on one's own row; no "Resend verification" for a confirmed address.
    expect(byTestId(rowOf(section, base.email), 'user-toggle-active').hidden).toBe(true);
    expect(byTestId(rowOf(section, base.email), 'user-resend-verification').hidden).toBe(true);
    // Each row's buttons are named with its account, for a screen reader's list of buttons.
    expect(byTestId(rowOf(section, bob.email), 'user-toggle-active').getAttribute('aria-label')).toBe(
      `Disable ${bob.email}`,
    );
    expect(byTestId(rowOf(section, bob.email), 'user-send-reset').getAttribute('aria-label')).toBe(
      `Send a password reset link to ${bob.email}`,
    );
    byTestId<HTMLButtonElement>(rowOf(section, bob.email), 'user-toggle-active').click();
    await settle();
    expect(actions.updateUser).toHaveBeenCalledWith('bob', { is_active: false });
    expect(byTestId(rowOf(section, bob.email), 'user-toggle-active').getAttribute('aria-label')).toBe(
      `Enable ${bob.email}`,
    );
    expect(byTestId(rowOf(section, bob.email), 'user-state').textContent).toBe('disabled');
    expect(byTestId(section, 'admin-users-status').textContent).toMatch(/disabled; their sessions ended/);
    const role = byTestId<HTMLSelectElement>(rowOf(section, bob.email), 'user-role');
    role.value = 'admin';
    role.dispatchEvent(new Event('change'));
    await settle();
    expect(actions.updateUser).toHaveBeenLastCalledWith('bob', { role: 'admin' });
    byTestId<HTMLButtonElement>(rowOf(section, bob.email), 'user-resend-verification').click();
    byTestId<HTMLButtonElement>(rowOf(section, bob.email), 'user-send-reset').click();
    await settle();
    expect(actions.resendVerification).toHaveBeenCalledWith('bob');
    expect(actions.sendPasswordReset).toHaveBeenCalledWith('bob');
    byTestId<HTMLInputElement>(section, 'user-search-input').value = ' bo ';
    byTestId<HTMLFormElement>(section, 'user-search').dispatchEvent(
      new Event('submit', { cancelable: true }),
    );
    await settle();
    expect(actions.listUsers).toHaveBeenLastCalledWith({ email_prefix: 'bo', limit: 50 });
  });

  // A search read before a disable answered must not bring the active row back (the list would
  // show bob active while the server has him disabled, until the next search).
  it('users: a search answer older than a change keeps the change', async () => {
    let answerSearch = () => {};
    const searched = new Promise<void>((resolve) => {
      answerSearch = resolve;
    });
    let calls = 0;
    const actions = {
      listUsers: vi.fn(async () => {
        calls += 1;
        if (calls === 2) await searched;
        return ok(pageOf([base, bob]));
      }),
      updateUser: vi.fn(async (_id: string, change: { is_active?: boolean }) => ok({ ...bob, ...change })),
      resendVerification: vi.fn(),
      sendPasswordReset: vi.fn(),
    };
    const section = adminUsers(actions, base, new AbortController().signal);
    await settle();
    byTestId<HTMLFormElement>(section, 'user-search').dispatchEvent(
      new Event('submit', { cancelable: true }),
    );
    await settle();
    byTestId<HTMLButtonElement>(rowOf(section, bob.email), 'user-toggle-active').click();
    await settle();
    expect(byTestId(rowOf(section, bob.email), 'user-state').textContent).toBe('disabled');
    answerSearch();
    await settle();
    expect(actions.listUsers).toHaveBeenCalledTimes(2);
    expect(byTestId(rowOf(section, bob.email), 'user-state').textContent).toBe('disabled');
  });

  it('users: a refused role change puts the select back and says why', async () => {
    const actions = {
      listUsers: vi.fn(async () => ok(pageOf([bob]))),
      updateUser: vi.fn(async () => ({
        ok: false as const,
        problem: problemOf(403, 'FORBIDDEN', 'Only a super_admin grants admin roles.'),
      })),
      resendVerification: vi.fn(),
      sendPasswordReset: vi.fn(),
    };
    const section = adminUsers(actions, base, new AbortController().signal);
    await settle();
    const role = byTestId<HTMLSelectElement>(section, 'user-role');
    role.value = 'super_admin';
    role.dispatchEvent(new Event('change'));
    await settle();
    expect(role.value).toBe('user');
    expect(byTestId(section, 'admin-users-error').textContent).toMatch(/Only a super_admin/);
  });

  it('audit: sends the filters (times as RFC 3339) and pages to older entries', async () => {
    const entry = (id: number): AuditEntryView => ({
      id,
      event: 'login_failed',
      actor_id: null,
      target_id: 'bob',
      ip: '203.0.113.5',
      user_agent: null,
      details: null,
      created_at: '2026-12-02T10:00:00.000Z',
    });
    const listAudit = vi.fn(async (filter: { offset?: number }) =>
      ok({ items: [entry((filter.offset ?? 0) + 1)], total: 2, limit: 50, offset: filter.offset ?? 0 }),
    );
    const section = adminAudit({ listAudit }, new AbortController().signal);
    await settle();
    expect(section.querySelectorAll('[data-testid="audit-row"]')).toHaveLength(1);
    byTestId<HTMLInputElement>(section, 'audit-event-input').value = 'login_failed';
    byTestId<HTMLInputElement>(section, 'audit-since-input').value = '2026-12-01T08:30';
    byTestId<HTMLFormElement>(section, 'audit-filters').dispatchEvent(
      new Event('submit', { cancelable: true }),
    );
    await settle();
    expect(listAudit).toHaveBeenLastCalledWith(
      expect.objectContaining({
        event: 'login_failed',
        since: new Date('2026-12-01T08:30').toISOString(),
        until: undefined,
        offset: 0,
      }),
    );
    expect(byTestId(section, 'audit-more').hidden).toBe(false);
    byTestId<HTMLButtonElement>(section, 'audit-more').click();
    await settle();
    expect(listAudit).toHaveBeenLastCalledWith(expect.objectContaining({ offset: 1 }));
    expect(byTestId(section, 'audit-more').hidden).toBe(true);
  });

  it('clothes: filters, adds and deletes', async () => {
    const shirt: Clothing = {
      id: 'c1',
      name: 'Shirt',
      photo_url: 'https://img.example.com/shirt.jpg',
      size: 'm',
      color: 'blue',
      created_at: '2026-01-01T00:00:00.000Z',
      last_modified_at: '2026-01-01T00:00:00.000Z',
    };
    const actions = {
      listClothes: vi.fn(async () => ok(pageOf([shirt]))),
      createClothing: vi.fn(async () => ok(shirt, 201)),
      deleteClothing: vi.fn(async () => ok(undefined, 204)),
    };
    const section = adminClothes(actions, new AbortController().signal);
    await settle();
    expect(byTestId(section, 'clothing-item').textContent).toContain('Shirt · m · blue');
    expect(byTestId(section, 'clothing-item').querySelector('a')?.getAttribute('href')).toBe(shirt.photo_url);
    const size = byTestId<HTMLSelectElement>(section, 'clothes-size-filter');
    size.value = 'xl';
    size.dispatchEvent(new Event('change'));
    await settle();
    expect(actions.listClothes).toHaveBeenLastCalledWith({ size: 'xl', color: '', limit: 100 });
    byTestId<HTMLInputElement>(section, 'clothing-name-input').value = 'Coat';
    byTestId<HTMLInputElement>(section, 'clothing-photo-input').value = 'https://img.example.com/coat.jpg';
    byTestId<HTMLSelectElement>(section, 'clothing-color-input').value = 'navy';
    byTestId<HTMLFormElement>(section, 'clothing-form').dispatchEvent(
      new Event('submit', { cancelable: true }),
    );
    await settle();
    expect(actions.createClothing).toHaveBeenCalledWith({
      name: 'Coat',
      photo_url: 'https://img.example.com/coat.jpg',
      size: 'xs',
      color: 'navy',
    });
    byTestId<HTMLButtonElement>(section, 'clothing-delete').click();
    await settle();
    expect(actions.deleteClothing).toHaveBeenCalledWith('c1');
  });
});
