/**
 * The host's watch-link calls (issue 14, item 8): create, list, revoke. Stateless; the watch-links
 * card takes a {@link WatchLinkActions} so its tests pass fakes.
 */
import { type ApiResult, api } from './api.js';
import type { SpectatorLink, SpectatorLinkCreated } from './types.js';

/** A page of the room's live watch links. */
export interface WatchLinkPage {
  items: SpectatorLink[];
  total: number;
}

/** Watch-link calls for one room's host. */
export interface WatchLinkActions {
  /** `POST /rooms/{code}/spectator-links`: a new link, its token shown once. */
  create(code: string): Promise<ApiResult<SpectatorLinkCreated>>;
  /** `GET /rooms/{code}/spectator-links`: the live links, newest first. */
  list(code: string): Promise<ApiResult<WatchLinkPage>>;
  /** `DELETE /rooms/{code}/spectator-links/{id}`: the link stops working, its viewers' streams end. */
  revoke(code: string, id: string): Promise<ApiResult<undefined>>;
}

const linksPath = (code: string, suffix = '') =>
  `/rooms/${encodeURIComponent(code)}/spectator-links${suffix}`;

/** The watch-link calls over the API. */
export const watchLinkActions: WatchLinkActions = {
  create: (code) => api<SpectatorLinkCreated>('POST', linksPath(code)),
  // The room's cap on live links (20) fits one page of the server's maximum size.
  list: (code) => api<WatchLinkPage>('GET', linksPath(code, '?limit=100')),
  revoke: (code, id) => api<undefined>('DELETE', linksPath(code, `/${encodeURIComponent(id)}`)),
};
