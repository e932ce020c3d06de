/**
 * The host's "Watch links" card (issue 14, item 8): create a read-only link (shown once, with a
 * copy button), see the live ones, revoke any. A watch link lets anyone holding it follow the
 * rolls (secret ones as placeholders) without being a player.
 */
import { h, setChildren } from '../dom.js';
import { buildAlert } from '../forms.js';
import { problemMessage } from '../problem.js';
import { watchHash } from '../routes.js';
import type { SpectatorLink } from '../types.js';
import type { WatchLinkActions } from '../watch-link-actions.js';
import { copyButton, joinUrl } from './copy-button.js';

/** The card for room `code`'s host; its calls stop mattering once `until` aborts. */
export function watchLinks(code: string, actions: WatchLinkActions, until: AbortSignal): HTMLElement {
  const alert = buildAlert('watch-links-error');
  const fresh = h('div', { class: 'watch-link-new', 'aria-live': 'polite' });
  const list = h('ul', { class: 'watch-link-list', 'data-testid': 'watch-link-list' });
  const create = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': 'create-watch-link-button' },
    'Create watch link',
  );

  const render = (links: readonly SpectatorLink[]) => {
    setChildren(
      list,
      ...links.map((link) => {
        const revoke = h(
          'button',
          {
            type: 'button',
            class: 'button button--danger button--small',
            'data-testid': 'revoke-watch-link-button',
            'aria-label': `Revoke the watch link created ${formatTime(link.created_at)}`,
          },
          'Revoke',
        );
        revoke.addEventListener('click', () => {
          revoke.disabled = true;
          alert.clear();
          void actions.revoke(code, link.id).then((result) => {
            if (until.aborted) return;
            if (!result.ok && result.problem.code !== 'SPECTATOR_LINK_NOT_FOUND') {
              revoke.disabled = false;
              alert.show(problemMessage(result.problem));
              return;
            }
            fresh.replaceChildren();
            void refresh();
          });
        });
        return h(
          'li',
          { class: 'watch-link', 'data-testid': 'watch-link-item', 'data-link-id': link.id },
          h('span', {}, `Created ${formatTime(link.created_at)}`),
          ' ',
          revoke,
        );
      }),
    );
    if (links.length === 0) list.append(h('li', { class: 'empty' }, 'No watch links.'));
  };

  // Only the newest list request draws: an older one answering last (the card's first load,
  // overtaken by the one after a create) would wipe the link just made.
  let requested = 0;
  const refresh = async () => {
    requested += 1;
    const mine = requested;
    const result = await actions.list(code);
    if (until.aborted || mine !== requested) return;
    if (result.ok) render(result.data.items);
    else alert.show(problemMessage(result.problem));
  };

  create.addEventListener('click', () => {
    create.disabled = true;
    alert.clear();
    void actions.create(code).then((result) => {
      if (until.aborted) return;
      create.disabled = false;
      if (!result.ok) {
        alert.show(problemMessage(result.problem));
        return;
      }
      const url = joinUrl(watchHash(code, result.data.token));
      setChildren(
        fresh,
        h('p', {}, 'Anyone with this link can watch (not roll). It is shown only now:'),
        h('p', {}, h('code', { class: 'share-link', 'data-testid': 'watch-link-url' }, url)),
        ...copyButton(url, 'Copy watch link', 'copy-watch-link-button'),
      );
      void refresh();
    });
  });

  void refresh();
  return h(
    'section',
    { class: 'card watch-links', 'aria-labelledby': 'watch-links-title' },
    h('h2', { id: 'watch-links-title' }, 'Watch links'),
    h(
      'p',
      { class: 'aside' },
      'Read-only links for spectators: they see rolls and who is here, and cannot roll.',
    ),
    alert.element,
    create,
    fresh,
    list,
  );
}

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
