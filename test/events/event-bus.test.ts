import { describe, expect, it, vi } from 'vitest';
import {
  createMemoryEventBus,
  type GatehouseEvent,
  publishRevokedSessions,
  REVOKED_SESSIONS_PER_MESSAGE,
} from '../../src/events/event-bus.js';

describe('createMemoryEventBus', () => {
  it('keeps delivering to the other handlers when one throws, and reports it', async () => {
    const onHandlerError = vi.fn();
    const bus = createMemoryEventBus({ onHandlerError });
    const seen: GatehouseEvent[] = [];
    bus.subscribe(() => {
      throw new Error('broken');
    });
    bus.subscribe((event) => seen.push(event));
    const event: GatehouseEvent = { type: 'user_changed', userId: 'u1' };
    await bus.publish(event);
    expect(seen).toEqual([event]);
    expect(onHandlerError).toHaveBeenCalledWith(expect.objectContaining({ message: 'broken' }), event);
  });
});

describe('publishRevokedSessions', () => {
  it('announces ended sessions in messages of at most REVOKED_SESSIONS_PER_MESSAGE, ids and expiries only, none for none', async () => {
    const events: GatehouseEvent[] = [];
    const bus = { publish: async (event: GatehouseEvent) => void events.push(event) };
    await publishRevokedSessions(bus, []);
    expect(events).toEqual([]);
    const ended = Array.from({ length: 2 * REVOKED_SESSIONS_PER_MESSAGE + 1 }, (_, i) => ({
      id: `s${i}`,
      expiresAt: i,
      userId: 'extra field, not sent',
    }));
    await publishRevokedSessions(bus, ended);
    const sizes = events.map((event) => (event.type === 'sessions_revoked' ? event.sessions.length : 0));
    expect(sizes).toEqual([REVOKED_SESSIONS_PER_MESSAGE, REVOKED_SESSIONS_PER_MESSAGE, 1]);
    const sent = events.flatMap((event) => (event.type === 'sessions_revoked' ? event.sessions : []));
    expect(sent).toEqual(ended.map(({ id, expiresAt }) => ({ id, expiresAt })));
  });
});
