import { describe, expect, it, vi } from 'vitest';
import {
  createPresence,
  PRESENCE_COALESCE_MS,
  PRESENCE_EXPIRY_BEATS,
  type PresenceChange,
  type PresenceMessage,
  type SpectatorCountChange,
} from '../../../../src/apps/dicery/core/presence.js';
import { createTestClock } from '../../../../src/testing.js';

const HEARTBEAT_MS = 1000;

/**
 * A heartbeat too large for one message travels in parts (`beat: { id, part, parts }`). Redis
 * pub/sub is at-most-once, so some parts never arrive: these tests feed one instance's presence the
 * parts another instance would send, drop some, and check what its watchers see. A lost part must
 * neither make members flap (offline, then online again at the next heartbeat) nor leave a room the
 * sender left online for as long as the sender lives.
 */
describe('presence: a heartbeat in parts whose parts never all arrive', () => {
  const open = async () => {
    const clock = createTestClock();
    let deliver: ((message: PresenceMessage) => void) | undefined;
    const presence = await createPresence({
      openChannel: async (options) => {
        deliver = options.deliver;
        return { publish: async () => true, close: () => {} };
      },
      scheduler: clock,
      heartbeatMs: HEARTBEAT_MS,
      onWarning: vi.fn(),
    });
    const receive = (message: PresenceMessage) => deliver?.(message);
    let beats = 0;
    /**
     * The other instance's heartbeat: `parts` as the rooms of each part, in order; `lost` lists the
     * parts that never arrive.
     */
    const heartbeat = (parts: string[][], lost: number[] = []) => {
      const id = `beat-${++beats}`;
      for (const [part, rooms] of parts.entries()) {
        if (lost.includes(part)) continue;
        receive({
          instance: 'other',
          full: false,
          rooms: rooms.map((code) => ({ code, members: [`player:${code.toLowerCase()}`] })),
          beat: { id, part, parts: parts.length },
        });
      }
    };
    /** Every change the watchers of `rooms` were told, in order. */
    const changes: (PresenceChange | SpectatorCountChange)[] = [];
    const watch = (...rooms: string[]) => {
      for (const room of rooms) presence.subscribe(room, (change) => changes.push(change));
    };
    const online = (room: string) => presence.online(room).playerIds.length > 0;
    return { presence, clock, heartbeat, receive, watch, changes, online };
  };

  it('one lost part changes nothing: no member goes offline, and the next whole heartbeat still drops a room left', async () => {
    const { presence, clock, heartbeat, watch, changes, online } = await open();
    heartbeat([['KEEP01'], ['LOST01', 'LEFT01']]);
    watch('KEEP01', 'LOST01', 'LEFT01');
    expect(['KEEP01', 'LOST01', 'LEFT01'].map(online)).toEqual([true, true, true]);

    // The sender left LEFT01 (its change message lost too), and this heartbeat's second part is lost.
    clock.advance(HEARTBEAT_MS);
    heartbeat([['KEEP01'], ['LOST01']], [1]);
    clock.advance(HEARTBEAT_MS);
    expect(['KEEP01', 'LOST01', 'LEFT01'].map(online)).toEqual([true, true, true]);
    expect(changes).toEqual([]);

    // The next heartbeat arrives whole: LEFT01 goes, the others never flapped.
    heartbeat([['KEEP01'], ['LOST01']]);
    expect(['KEEP01', 'LOST01', 'LEFT01'].map(online)).toEqual([true, true, false]);
    expect(changes).toEqual([{ room: 'LEFT01', playerId: 'left01', online: false }]);
    presence.close();
  });

  it(`a part lost every time: rooms no part names go offline after ${PRESENCE_EXPIRY_BEATS} heartbeats, the rest stay`, async () => {
    const { presence, clock, heartbeat, watch, changes, online } = await open();
    heartbeat([['KEEP02'], ['LEFT02']]);
    watch('KEEP02', 'LEFT02');
    // The sender left LEFT02; from now on its last part is always lost (and it names no room).
    let beatsSent = 0;
    const tick = () => {
      clock.advance(HEARTBEAT_MS);
      heartbeat([['KEEP02'], []], [1]);
      beatsSent += 1;
    };
    while (online('LEFT02') && beatsSent < 10 * PRESENCE_EXPIRY_BEATS) {
      tick();
      // Never dropped before the sender could have named it in PRESENCE_EXPIRY_BEATS heartbeats.
      if (beatsSent < PRESENCE_EXPIRY_BEATS) expect(online('LEFT02')).toBe(true);
    }
    expect(online('LEFT02')).toBe(false);
    expect(beatsSent).toBeLessThanOrEqual(PRESENCE_EXPIRY_BEATS + 1);
    // The sender is alive (its parts keep arriving): its other room never went offline.
    for (let i = 0; i < 2 * PRESENCE_EXPIRY_BEATS; i++) tick();
    expect(online('KEEP02')).toBe(true);
    expect(changes).toEqual([{ room: 'LEFT02', playerId: 'left02', online: false }]);
    presence.close();
  });

  it('a room the lost parts kept unconfirmed comes back with the first part that names it', async () => {
    const { presence, clock, heartbeat, watch, changes, online } = await open();
    heartbeat([['KEEP03'], ['BACK03']]);
    watch('BACK03');
    for (let i = 0; i <= PRESENCE_EXPIRY_BEATS; i++) {
      clock.advance(HEARTBEAT_MS);
      heartbeat([['KEEP03'], ['BACK03']], [1]);
    }
    expect(online('BACK03')).toBe(false);
    heartbeat([['KEEP03'], ['BACK03']]);
    expect(online('BACK03')).toBe(true);
    // Announced at the end of the coalescing window its going offline opened (red-team G8).
    clock.advance(PRESENCE_COALESCE_MS);
    expect(changes).toEqual([
      { room: 'BACK03', playerId: 'back03', online: false },
      { room: 'BACK03', playerId: 'back03', online: true },
    ]);
    presence.close();
  });

  it('a part lost every other heartbeat never drops a room (no flapping)', async () => {
    const { presence, clock, heartbeat, watch, changes, online } = await open();
    heartbeat([['KEEP04'], ['HALF04']]);
    watch('KEEP04', 'HALF04');
    for (let i = 0; i < 6 * PRESENCE_EXPIRY_BEATS; i++) {
      clock.advance(HEARTBEAT_MS);
      heartbeat([['KEEP04'], ['HALF04']], i % 2 === 0 ? [1] : []);
      expect(online('HALF04')).toBe(true);
    }
    expect(changes).toEqual([]);
    presence.close();
  });

  it('a sender that dies mid-heartbeat (parts missing) goes offline whole after the expiry', async () => {
    const { presence, clock, heartbeat, watch, changes, online } = await open();
    heartbeat([['GONE05'], ['GONE06']]);
    watch('GONE05', 'GONE06');
    clock.advance(HEARTBEAT_MS);
    heartbeat([['GONE05'], ['GONE06']], [1]);
    for (let i = 0; i <= PRESENCE_EXPIRY_BEATS; i++) clock.advance(HEARTBEAT_MS);
    expect([online('GONE05'), online('GONE06')]).toEqual([false, false]);
    expect(changes.map((change) => 'online' in change && change.online)).toEqual([false, false]);
    presence.close();
  });
});
