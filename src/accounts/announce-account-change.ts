import type { EventBus, GatehouseEvent } from '../events/event-bus.js';
import type { RevocationList } from '../sessions/revocation-list.js';
import type { RevokedSession } from '../storage/session-store.js';

/** Dependencies of {@link createAccountChangeAnnouncer}. */
export interface AccountChangeAnnouncerDeps {
  /** This instance's revocation list: told about revoked sessions before anything is published. */
  revocations: Pick<RevocationList, 'add'>;
  /**
   * `sessions_revoked` and `user_changed` on this bus tell every instance (this one included) to
   * drop the sessions and evict the cached user.
   */
  bus: Pick<EventBus, 'publish'>;
  /**
   * Called when a broadcast fails (e.g. Redis is down). The change has committed and still
   * succeeds: this instance already applied it, and the others catch up through their periodic
   * database reloads.
   */
  onPublishError(error: unknown, event: GatehouseEvent): void;
}

/**
 * Tells this instance and the others about a committed account change: `revoked` are the sessions
 * it ended (possibly none), `userId` the account whose cached copy is now stale.
 */
export type AnnounceAccountChange = (userId: string, revoked: readonly RevokedSession[]) => Promise<void>;

/**
 * Builds the after-commit announcement of the account services (administration, lifecycle,
 * deletion). In this order: this instance's revocation list (a local Map, cannot fail), then the
 * broadcasts. A failed broadcast is reported, never thrown: the committed change must not turn
 * into a 5xx (issue 9), and the local bus delivers before the network is touched.
 */
export function createAccountChangeAnnouncer(deps: AccountChangeAnnouncerDeps): AnnounceAccountChange {
  return async (userId, revoked) => {
    if (revoked.length > 0) deps.revocations.add(revoked);
    const events: GatehouseEvent[] = [];
    if (revoked.length > 0) events.push({ type: 'sessions_revoked', sessions: [...revoked] });
    events.push({ type: 'user_changed', userId });
    for (const event of events) {
      try {
        await deps.bus.publish(event);
      } catch (error) {
        deps.onPublishError(error, event);
      }
    }
  };
}
