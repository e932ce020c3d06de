// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { homeView } from '../../../web/src/components/home-view.js';
import { createAppStore } from '../../../web/src/store.js';

afterEach(() => {
  document.body.replaceChildren();
});

const hannah = {
  id: 'u1',
  email: 'hannah@example.com',
  full_name: 'Hannah',
  role: 'user',
  is_active: true,
  email_verified: true,
  created_at: '2026-01-01T00:00:00.000Z',
};

describe('homeView', () => {
  it('follows the store: ways in for visitors, a welcome and the create-room card for users', () => {
    const store = createAppStore();
    const container = document.createElement('div');
    const notice = document.createElement('p');
    notice.textContent = 'You are logged out.';
    homeView(container, store, { createRoom: vi.fn() }, new AbortController().signal, notice);
    expect(container.querySelector('h1')?.textContent).toBe('Roll dice together');
    expect(container.querySelector('[data-testid="home-login-link"]')).not.toBeNull();
    expect(container.children[1]).toBe(notice);
    store.user.value = hannah;
    expect(container.querySelector('[data-testid="welcome-heading"]')?.textContent).toBe('Welcome, Hannah');
    expect(container.querySelector('[data-testid="create-room-form"]')).not.toBeNull();
    expect(container.children[1]).toBe(notice);
    store.user.value = { ...hannah, full_name: '  ' };
    expect(container.querySelector('h1')?.textContent).toBe('Welcome, hannah@example.com');
  });

  it('stops following the store when the page is left', () => {
    const store = createAppStore();
    const container = document.createElement('div');
    const page = new AbortController();
    homeView(container, store, { createRoom: vi.fn() }, page.signal);
    page.abort();
    store.user.value = hannah;
    expect(container.querySelector('h1')?.textContent).toBe('Roll dice together');
  });
});
