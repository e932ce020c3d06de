// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import { type ConnectedApp, connectedApps } from '../../../web/src/components/connected-apps.js';
import { problemOf, settle } from '../fixtures.js';

const app = (id: string, name: string): ConnectedApp => ({
  client_id: id,
  name,
  scopes: ['openid', 'email'],
  consented_at: '2026-01-01T00:00:00.000Z',
});

const items = (container: HTMLElement) =>
  Array.from(container.querySelectorAll('[data-testid="connected-app"]')).map((item) =>
    item.getAttribute('data-client-id'),
  );

describe('connectedApps', () => {
  it('lists the apps, names as text, and removes one once disconnected', async () => {
    const container = document.createElement('section');
    const disconnect = vi.fn(async () => ({ ok: true as const, status: 204, data: undefined }));
    await connectedApps(container, {
      load: async () => ({ ok: true, status: 200, data: [app('a', '<b>Stats</b>'), app('b', 'Notes')] }),
      disconnect,
    });
    expect(items(container)).toEqual(['a', 'b']);
    expect(container.querySelector('strong')?.textContent).toBe('<b>Stats</b>');
    expect(container.querySelector('b')).toBeNull();
    container.querySelector<HTMLButtonElement>('[data-testid="disconnect-app"]')?.click();
    await settle();
    expect(disconnect).toHaveBeenCalledWith('a');
    expect(items(container)).toEqual(['b']);
  });

  it('says so when there is none, and keeps the button usable when disconnecting failed', async () => {
    const empty = document.createElement('section');
    await connectedApps(empty, {
      load: async () => ({ ok: true, status: 200, data: [] }),
      disconnect: vi.fn(),
    });
    expect(empty.querySelector('[data-testid="connected-apps-status"]')?.textContent).toBe(
      'No app can use your account.',
    );
    const container = document.createElement('section');
    await connectedApps(container, {
      load: async () => ({ ok: true, status: 200, data: [app('a', 'Stats')] }),
      disconnect: async () => ({ ok: false, problem: problemOf(503, 'DATABASE_UNAVAILABLE', 'Try again.') }),
    });
    const button = container.querySelector<HTMLButtonElement>('[data-testid="disconnect-app"]');
    button?.click();
    await settle();
    expect(button?.disabled).toBe(false);
    expect(items(container)).toEqual(['a']);
    expect(container.querySelector('[data-testid="connected-apps-status"]')?.textContent).toContain(
      'Try again.',
    );
  });
});
