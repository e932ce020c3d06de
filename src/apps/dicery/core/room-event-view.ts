import type { RoomEvent } from './room-bus.js';

/** Who an event is being delivered to: a player of the room, or its host (`playerId` null). */
export interface RoomEventViewer {
  playerId: string | null;
}

/**
 * The form of `event` that `viewer` may see. Streams call this for every event they deliver.
 *
 * Every subscriber must receive every sequence number of its room: a stream that skipped one could
 * not tell a hidden event from a lost one, and would refetch it forever (issue 9, item 6). So an
 * event a viewer may not see must come back *redacted* (same `id`, `room`, `type` and `at`, its
 * `data` cut down to what the viewer may know), never dropped. Returning the same object when
 * nothing is hidden lets streams share one serialized frame per event.
 *
 * Today every room event is visible to everyone in the room, so this is the identity. This is
 * the hook for future private events (e.g. a secret roll seen only by its roller and the host).
 */
export function viewRoomEvent(event: RoomEvent, _viewer: RoomEventViewer): RoomEvent {
  return event;
}
