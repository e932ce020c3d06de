import type { EventBus } from '../events/event-bus.js';
import type { RevokedSession, SessionStore } from '../storage/session-store.js';

/**
 * The set of revoked session ids that still have live tokens, held in memory so a JWT request
 * costs a Map lookup instead of a database read. It starts from the database (so it is right
 * after a restart) and is kept current by the event bus (so it is right on every instance).
 * An entry is dropped once its session's absolute expiry passes: no token can outlive that.
 */
export interface RevocationList {
  /** True when the session was revoked. */
  isRevoked(sessionId: string): boolean;
  /** Adds revoked sessions (from this instance or the bus). */
  add(sessions: readonly RevokedSession[]): void;
  /** Number of entries (for metrics and tests). */
  readonly size: number;
  /** Unsubscribes from the bus. */
  close(): void;
}

/** How stale a missed revocation broadcast can leave this instance, at worst. */
export const RELOAD_INTERVAL_MS = 30_000;

/** Loads the revocation list from `store` and subscribes it to `bus`. */
export async function createRevocationList(
  store: SessionStore,
  bus: EventBus,
  clock: () => number,
): Promise<RevocationList> {
  const revoked = new Map<string, number>();
  let nextSweep = 0;
  const sweep = (now: number) => {
    for (const [id, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(id);
    nextSweep = now + 60_000;
  };
  const add = (sessions: readonly RevokedSession[]) => {
    for (const session of sessions) revoked.set(session.id, session.expiresAt);
    const now = clock();
    if (now >= nextSweep) sweep(now);
  };
  add(await store.listRevokedSessions(clock()));
  const unsubscribe = bus.subscribe((event) => {
    if (event.type === 'sessions_revoked') add(event.sessions);
  });
  // Redis pub/sub is at-most-once: a message lost during a reconnect must not leave a revoked
  // session alive here for good, so the list is also re-read from the database periodically.
  const reload = setInterval(() => {
    store.listRevokedSessions(clock()).then(add, () => {});
  }, RELOAD_INTERVAL_MS);
  reload.unref();
  return {
    isRevoked: (sessionId) => revoked.has(sessionId),
    add,
    get size() {
      return revoked.size;
    },
    close() {
      clearInterval(reload);
      unsubscribe();
    },
  };
}
