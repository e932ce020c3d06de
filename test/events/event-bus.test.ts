import { describe, expect, it, vi } from 'vitest';
import { createMemoryEventBus, type GatehouseEvent } from '../../src/events/event-bus.js';

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
