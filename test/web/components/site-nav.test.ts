// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import { siteNav } from '../../../web/src/components/site-nav.js';
import { createAppStore } from '../../../web/src/store.js';
import { settle } from '../fixtures.js';

const user = {
  id: 'u1',
  email: 'hannah@example.com',
  full_name: null,
  role: 'user',
  is_active: true,
  email_verified: true,
  created_at: '2026-01-01T00:00:00.000Z',
};

function testIds(nav: HTMLElement): (string | null)[] {
  return Array.from(nav.children).map((child) => child.getAttribute('data-testid'));
}

describe('siteNav', () => {
  it('follows who is signed in', () => {
    const nav = document.createElement('nav');
    const store = createAppStore();
    siteNav(nav, store, { logOut: vi.fn() }, new AbortController().signal);
    expect(testIds(nav)).toEqual(['nav-join', 'nav-login', 'nav-signup']);
    store.user.value = user;
    expect(testIds(nav)).toEqual([
      'nav-join',
      'nav-create-room',
      'nav-my-rooms',
      'nav-user',
      'logout-button',
    ]);
    expect(nav.querySelector('[data-testid="nav-user"]')?.textContent).toBe('hannah@example.com');
    expect(nav.querySelector('[data-testid="nav-user"]')?.getAttribute('href')).toBe('#/account');
    // Admins also get the console.
    store.user.value = { ...user, role: 'admin' };
    expect(testIds(nav)).toEqual([
      'nav-join',
      'nav-create-room',
      'nav-my-rooms',
      'nav-user',
      'nav-admin',
      'logout-button',
    ]);
  });

  it('keeps Log out usable when logging out failed', async () => {
    const nav = document.createElement('nav');
    const store = createAppStore();
    store.user.value = user;
    const logOut = vi.fn(async () => 'Could not log out: the server is unavailable.');
    siteNav(nav, store, { logOut }, new AbortController().signal);
    const button = nav.querySelector<HTMLButtonElement>('[data-testid="logout-button"]');
    button?.click();
    expect(button?.disabled).toBe(true);
    await settle();
    expect(logOut).toHaveBeenCalledOnce();
    expect(button?.disabled).toBe(false);
  });
});
