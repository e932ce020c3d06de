/** Cross-instance notifications that keep in-memory caches correct. */
export type GatehouseEvent =
  | { type: 'sessions_revoked'; sessions: { id: string; expiresAt: number }[] }
  | { type: 'user_changed'; userId: string };

/**
 * Publishes events to every instance (this one included) and delivers them to subscribers.
 * The in-process implementation serves a single server; the Redis one fans out across a fleet.
 */
export interface EventBus {
  /** Delivers `event` to local subscribers at once, then to other instances. */
  publish(event: GatehouseEvent): Promise<void>;
  /** Registers a handler; returns a function that removes it. */
  subscribe(handler: (event: GatehouseEvent) => void): () => void;
  /** Releases connections. */
  close(): Promise<void>;
}

/** An {@link EventBus} for a single process. */
export function createMemoryEventBus(): EventBus {
  const handlers = new Set<(event: GatehouseEvent) => void>();
  return {
    async publish(event) {
      for (const handler of handlers) handler(event);
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
