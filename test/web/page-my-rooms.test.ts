// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { accountActions } from '../../web/src/account-actions.js';
import type { PageContext } from '../../web/src/page.js';
import { renderMyRooms } from '../../web/src/page-my-rooms.js';
import { roomActions } from '../../web/src/room-actions.js';
import { createAppStore } from '../../web/src/store.js';
import type { User } from '../../web/src/types.js';

function contextFor(user: User | null): PageContext {
  const store = createAppStore();
  store.user.value = user;
  return {
    main: document.createElement('main'),
    store,
    account: accountActions(store),
    rooms: roomActions,
    signal: new AbortController().signal,
    notice: undefined,
    navigate: vi.fn(),
  };
}

const USER: User = {
  id: 'u1',
  email: 'host@example.com',
  full_name: null,
  role: 'user',
  is_active: true,
  email_verified: true,
  created_at: '2026-01-01T00:00:00.000Z',
};

/** Answers `GET /rooms?limit=100` with `body` and `status`. */
function serve(status: number, body: unknown) {
  const fetch = vi.fn<(path: string) => Promise<Response>>(
    async () =>
      new Response(JSON.stringify(body), {
        status,
        headers: { 'Content-Type': status < 400 ? 'application/json' : 'application/problem+json' },
      }),
  );
  vi.stubGlobal('fetch', fetch);
  return fetch;
}

async function until(check: () => boolean) {
  await vi.waitFor(() => expect(check()).toBe(true));
}

afterEach(() => vi.unstubAllGlobals());

describe('My rooms page', () => {
  it('lists the rooms from GET /rooms with lobby and join links for open ones', async () => {
    const fetch = serve(200, {
      items: [
        {
          code: 'ABCD2345',
          name: 'Den',
          state: 'open',
          locked: true,
          created_at: '2026-01-02T00:00:00.000Z',
          closed_at: null,
          last_activity_at: '2026-01-02T00:00:00.000Z',
        },
        {
          code: 'WXYZ6789',
          name: 'Old table',
          state: 'closed',
          locked: false,
          created_at: '2026-01-01T00:00:00.000Z',
          closed_at: '2026-01-01T05:00:00.000Z',
          last_activity_at: '2026-01-01T04:00:00.000Z',
        },
      ],
      total: 2,
      limit: 100,
      offset: 0,
    });
    const ctx = contextFor(USER);
    renderMyRooms(ctx);
    const list = () => ctx.main.querySelector('[data-testid="my-rooms"]');
    await until(() => list()?.getAttribute('aria-busy') === 'false');
    expect(fetch.mock.calls[0]?.[0]).toBe('/rooms?limit=100');
    const open = ctx.main.querySelector('[data-testid="my-room-ABCD2345"]');
    expect(open?.querySelector('a[href="#/rooms/ABCD2345"]')?.textContent).toBe('Den');
    expect(open?.querySelector('a[href="#/join/ABCD2345"]')).not.toBeNull();
    expect(open?.textContent).toContain('locked to new players');
    const closed = ctx.main.querySelector('[data-testid="my-room-WXYZ6789"]');
    expect(closed?.textContent).toContain('closed');
    expect(closed?.querySelector('a')).toBeNull();
  });

  it('says so when there are none, shows the problem on failure, and asks to log in when signed out', async () => {
    serve(200, { items: [], total: 0, limit: 100, offset: 0 });
    const empty = contextFor(USER);
    renderMyRooms(empty);
    await until(() => (empty.main.textContent ?? '').includes('You host no rooms yet'));

    serve(401, {
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: 'Sign in first.',
      code: 'UNAUTHENTICATED',
    });
    const failed = contextFor(USER);
    renderMyRooms(failed);
    await until(() => failed.main.querySelector('[role="alert"]') !== null);

    const fetch = serve(200, {});
    const signedOut = contextFor(null);
    renderMyRooms(signedOut);
    expect(signedOut.main.querySelector('a[href^="#/login"]')).not.toBeNull();
    expect(fetch).not.toHaveBeenCalled();
  });
});
