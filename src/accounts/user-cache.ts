import type { EventBus } from '../events/event-bus.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { UserRecord, UserStore } from '../storage/user-store.js';

/**
 * Users by id, cached so guards need no database read per request. Every change to a user
 * publishes `user_changed`, which evicts the entry here and on every other instance.
 */
export interface UserCache {
  /** The user, from memory or the store. */
  get(id: string): Promise<UserRecord | undefined>;
  /** Forgets a user (after a change this instance made; the bus handles the others). */
  evict(id: string): void;
  /** Unsubscribes from the bus. */
  close(): void;
}

/** Creates a bounded {@link UserCache} (oldest entries go first when full). */
export function createUserCache(store: UserStore, bus: EventBus, maxEntries = 10_000): UserCache {
  const users = new BoundedMap<string, UserRecord>(maxEntries);
  const unsubscribe = bus.subscribe((event) => {
    if (event.type === 'user_changed') users.delete(event.userId);
  });
  return {
    async get(id) {
      const cached = users.get(id);
      if (cached !== undefined) return cached;
      const user = await store.findUserById(id);
      if (user !== undefined) users.set(id, user);
      return user;
    },
    evict: (id) => users.delete(id),
    close: unsubscribe,
  };
}
