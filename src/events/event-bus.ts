/** Cross-instance notifications that keep in-memory caches correct. */
export type GatehouseEvent =
  | { type: 'sessions_revoked'; sessions: { id: string; expiresAt: number }[] }
  /**
   * `gatehouse revoke-all` raised the revocation cut-off: no access token issued before
   * `notBefore` (epoch ms) is accepted any more. Receivers read the cut-off from the database
   * (`notBefore` only spares the read when already held): a message's value is never taken.
   */
  | { type: 'revocation_cutoff_raised'; notBefore: number }
  | { type: 'user_changed'; userId: string }
  /**
   * An OAuth client was removed, disabled or enabled: every instance forgets its cached look-up, so
   * its `client_credentials` tokens stop (or work again) at once.
   */
  | { type: 'oauth_client_removed'; clientId: string };

/**
 * Publishes events to every instance (this one included) and delivers them to subscribers.
 * The in-process implementation serves a single server; the Redis one fans out across a fleet.
 */
export interface EventBus {
  /**
   * Delivers `event` to local subscribers at once, then to other instances. Never rejects because
   * the cross-instance leg failed: the caller's change has committed, and other instances catch up
   * from the database (see `REVOCATION_RELOAD_INTERVAL`).
   */
  publish(event: GatehouseEvent): Promise<void>;
  /** Registers a handler; returns a function that removes it. */
  subscribe(handler: (event: GatehouseEvent) => void): () => void;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Most sessions one `sessions_revoked` message carries: a message stays small however many a change ended. */
export const REVOKED_SESSIONS_PER_MESSAGE = 500;

/**
 * Announces the sessions a committed change ended, in messages of at most
 * {@link REVOKED_SESSIONS_PER_MESSAGE}; nothing when there are none. Call it after the commit: a
 * broadcast must never go out for a change that rolled back.
 */
export async function publishRevokedSessions(
  bus: Pick<EventBus, 'publish'>,
  ended: readonly { id: string; expiresAt: number }[],
): Promise<void> {
  for (let at = 0; at < ended.length; at += REVOKED_SESSIONS_PER_MESSAGE) {
    await bus.publish({
      type: 'sessions_revoked',
      sessions: ended
        .slice(at, at + REVOKED_SESSIONS_PER_MESSAGE)
        .map(({ id, expiresAt }) => ({ id, expiresAt })),
    });
  }
}

/** Options of {@link createMemoryEventBus}. */
export interface MemoryEventBusOptions {
  /**
   * Called when a handler throws; the other handlers still receive the event.
   * @default emits a process warning
   */
  onHandlerError?: (error: unknown, event: GatehouseEvent) => void;
}

function warnHandlerError(error: unknown, event: GatehouseEvent): void {
  process.emitWarning(`Event handler threw on ${event.type}`, {
    code: 'GATEHOUSE_EVENT_HANDLER_ERROR',
    detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
}

/** An {@link EventBus} for a single process. */
export function createMemoryEventBus(options: MemoryEventBusOptions = {}): EventBus {
  const onHandlerError = options.onHandlerError ?? warnHandlerError;
  const handlers = new Set<(event: GatehouseEvent) => void>();
  return {
    async publish(event) {
      // Isolated: one broken cache must not keep the revocation list from hearing a logout.
      for (const handler of handlers) {
        try {
          handler(event);
        } catch (error) {
          onHandlerError(error, event);
        }
      }
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async close() {
      handlers.clear();
    },
  };
}
