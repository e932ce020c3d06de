// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { watchLinks } from '../../../web/src/components/watch-links.js';
import type { SpectatorLink } from '../../../web/src/types.js';
import type { WatchLinkActions } from '../../../web/src/watch-link-actions.js';
import { settle } from '../fixtures.js';

afterEach(() => {
  document.body.replaceChildren();
});

const byTestId = (root: HTMLElement, id: string) =>
  root.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`);

/** Fake actions over an in-memory list, as the server would keep it. */
function fakeActions(): WatchLinkActions & { links: SpectatorLink[] } {
  const links: SpectatorLink[] = [];
  let next = 0;
  return {
    links,
    create: vi.fn(async () => {
      next++;
      const link = { id: `link-${next}`, created_at: '2026-12-03T06:00:00.000Z' };
      links.unshift(link);
      return { ok: true as const, status: 201, data: { ...link, token: `secret-${next}` } };
    }),
    list: vi.fn(async () => ({
      ok: true as const,
      status: 200,
      data: { items: [...links], total: links.length },
    })),
    revoke: vi.fn(async (_code: string, id: string) => {
      links.splice(
        links.findIndex((link) => link.id === id),
        1,
      );
      return { ok: true as const, status: 204, data: undefined };
    }),
  };
}

describe('watchLinks', () => {
  it('creates a link, shows its URL once with the token in the fragment, lists and revokes it', async () => {
    const actions = fakeActions();
    const card = watchLinks('ABCD2345', actions, new AbortController().signal);
    document.body.append(card);
    await settle();
    expect(byTestId(card, 'watch-link-item')).toHaveLength(0);

    byTestId(card, 'create-watch-link-button')[0]?.click();
    await settle();
    await settle();
    const url = byTestId(card, 'watch-link-url')[0]?.textContent ?? '';
    expect(new URL(url).hash).toBe('#/watch/ABCD2345?token=secret-1');
    expect(byTestId(card, 'watch-link-item')).toHaveLength(1);
    expect(actions.create).toHaveBeenCalledWith('ABCD2345');

    byTestId(card, 'revoke-watch-link-button')[0]?.click();
    await settle();
    await settle();
    expect(actions.revoke).toHaveBeenCalledWith('ABCD2345', 'link-1');
    expect(byTestId(card, 'watch-link-item')).toHaveLength(0);
    // The shown URL goes with its link.
    expect(byTestId(card, 'watch-link-url')).toHaveLength(0);
  });

  // The card's first list request can answer after the one a create sends: it must not wipe the
  // link just made (a CI flake of the browser session test showed the race, red-team 2026-12-04).
  it('draws only the newest list answer, whichever order they arrive in', async () => {
    const actions = fakeActions();
    const list = actions.list;
    let releaseFirst = () => {};
    const firstHeld = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let calls = 0;
    actions.list = vi.fn(async (code: string) => {
      calls += 1;
      if (calls === 1) {
        const stale = await list(code);
        await firstHeld;
        return stale;
      }
      return list(code);
    });
    const card = watchLinks('ABCD2345', actions, new AbortController().signal);
    document.body.append(card);
    await settle();
    byTestId(card, 'create-watch-link-button')[0]?.click();
    await settle();
    await settle();
    expect(byTestId(card, 'watch-link-item')).toHaveLength(1);
    releaseFirst();
    await settle();
    expect(byTestId(card, 'watch-link-item')).toHaveLength(1);
  });

  it('shows the server’s refusal, e.g. too many links', async () => {
    const actions = fakeActions();
    actions.create = vi.fn(async () => ({
      ok: false as const,
      problem: {
        status: 409,
        code: 'TOO_MANY_SPECTATOR_LINKS',
        detail: 'This room already has 20 watch links, the most allowed; revoke one first.',
        errors: [],
      },
    }));
    const card = watchLinks('ABCD2345', actions, new AbortController().signal);
    document.body.append(card);
    byTestId(card, 'create-watch-link-button')[0]?.click();
    await settle();
    expect(card.textContent).toContain('revoke one first');
    expect(byTestId(card, 'watch-link-url')).toHaveLength(0);
  });
});
