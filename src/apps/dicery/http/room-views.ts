import type { RoomEvent } from '../core/room-bus.js';
import { hideRoll, maySeeRoll, type RoomEventViewer, type ViewedRoomEvent } from '../core/room-event-view.js';
import type { Player, Roll, RollView, Room } from '../shared/wire.js';
import type { PlayerRecord, RoomRecord } from '../storage/room-store.js';

export { PlayerSchema, RollSchema, RollViewSchema, RoomSchema } from '../shared/wire.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** The API view of a room. */
export function toRoomView(room: RoomRecord): Room {
  return {
    code: room.code,
    name: room.name,
    state: room.state,
    created_at: iso(room.createdAt),
    locked: room.locked,
  };
}

/** The API view of a present player. */
export function toPlayerView(player: PlayerRecord): Player {
  return { id: player.id, name: player.name, joined_at: iso(player.joinedAt) };
}

/** The API view of a roll: the event's data plus its id. */
export function toRollView(event: RoomEvent<'roll'>): Roll {
  return { id: event.id, ...event.data };
}

/** The API view of a roll as one viewer may see it (a secret roll may be a placeholder). */
export function toRollViewFor(event: RoomEvent<'roll'>, viewer: RoomEventViewer, revealed = false): RollView {
  if (maySeeRoll(event, viewer, revealed)) return toRollView(event);
  const hidden = hideRoll(event);
  return { id: hidden.id, ...hidden.data };
}

/**
 * The `data:` of an SSE message: the event's data plus its `id` and storage time `at`, so a
 * client that keeps events (e.g. rolls) can de-duplicate them by id.
 */
export function toEventPayload(event: ViewedRoomEvent): Record<string, unknown> {
  return { id: event.id, ...event.data, at: event.at };
}
