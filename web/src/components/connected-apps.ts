/**
 * "Connected apps": the apps this person allowed to use their account through the OAuth provider
 * (`GET /users/me/connected-apps`), each with a Disconnect button
 * (`DELETE /users/me/connected-apps/{client_id}`: the consent is forgotten and the app's sessions
 * end). A self-contained section for the account page to mount.
 */
import type { ApiResult } from '../api.js';
import { h, setChildren } from '../dom.js';
import type { AccountSection } from './account-section.js';

/** One connected app, as the server lists it. */
export interface ConnectedApp {
  client_id: string;
  name: string;
  scopes: string[];
  consented_at: string;
}

/** What the section asks of the page (the real calls, or test doubles). */
export interface ConnectedAppsOptions {
  load(): Promise<ApiResult<ConnectedApp[]>>;
  disconnect(clientId: string): Promise<ApiResult<unknown>>;
}

/** Renders the section into `container` and loads the list; resolves once it is shown. */
export async function connectedApps(container: HTMLElement, options: ConnectedAppsOptions): Promise<void> {
  const status = h('p', { class: 'aside', role: 'status', 'data-testid': 'connected-apps-status' });
  const list = h('ul', { class: 'connected-apps', 'data-testid': 'connected-apps-list' });
  setChildren(container, h('h2', {}, 'Connected apps'), status, list);

  const show = (apps: readonly ConnectedApp[]) => {
    status.textContent = apps.length === 0 ? 'No app can use your account.' : '';
    setChildren(
      list,
      ...apps.map((app) => {
        const button = h(
          'button',
          { type: 'button', class: 'button', 'data-testid': 'disconnect-app' },
          'Disconnect',
        );
        const item = h(
          'li',
          { 'data-testid': 'connected-app', 'data-client-id': app.client_id },
          // Text nodes only: an app's name is chosen by whoever registered it.
          h('strong', {}, app.name),
          ` — ${app.scopes.join(', ')} `,
          button,
        );
        button.addEventListener('click', () => {
          button.disabled = true;
          void options.disconnect(app.client_id).then((result) => {
            if (result.ok || result.problem.status === 404) {
              show(apps.filter((other) => other.client_id !== app.client_id));
              return;
            }
            button.disabled = false;
            status.textContent = `Could not disconnect ${app.name}: ${result.problem.detail}`;
          });
        });
        return item;
      }),
    );
  };

  status.textContent = 'Loading…';
  const result = await options.load();
  if (!result.ok) {
    status.textContent = `Could not load your connected apps: ${result.problem.detail}`;
    return;
  }
  show(result.data);
}

/** The account page's section (see `ACCOUNT_SECTIONS`): {@link connectedApps} in a card. */
export const accountConnectedApps: AccountSection = (ctx) => {
  const section = h('section', { class: 'card', 'data-testid': 'account-connected-apps' });
  void connectedApps(section, {
    load: () => ctx.actions.listConnectedApps(),
    disconnect: (clientId) => ctx.actions.disconnectApp(clientId),
  });
  return section;
};
