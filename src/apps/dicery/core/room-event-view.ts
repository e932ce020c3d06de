import type { HiddenRollEventData } from '../shared/wire.js';
import type { RoomEvent } from './room-bus.js';

/**
 * Who an event is being delivered to: a player of the room (`playerId`), and whether the caller is
 * (also) the room's host.
 */
export interface RoomEventViewer {
  playerId: string | null;
  /**
   * True when the caller proved they host the room.
   * @default false
   */
  host?: boolean;
}

/** A secret roll as someone who may not see it receives it: who rolled, when, its chain hash. */
export interface HiddenRollEvent {
  id: number;
  room: string;
  type: 'roll';
  data: HiddenRollEventData;
  at: string;
}

/** A room event as one viewer receives it. */
export type ViewedRoomEvent = RoomEvent | HiddenRollEvent;

/** True when `viewer` may see `roll` in full: it is not secret, or they are its host or roller. */
export function maySeeRoll(roll: RoomEvent<'roll'>, viewer: RoomEventViewer, revealed = false): boolean {
  return (
    roll.data.visibility !== 'host' ||
    revealed ||
    viewer.host === true ||
    viewer.playerId === roll.data.player.id
  );
}

/** The placeholder of a secret roll: none of its notation, label, dice, total or salt. */
export function hideRoll(roll: RoomEvent<'roll'>): HiddenRollEvent {
  // Built field by field from an allow-list, never by deleting from a copy: a field added to rolls
  // later stays out of the placeholder until someone decides it may go in.
  return {
    id: roll.id,
    room: roll.room,
    type: 'roll',
    at: roll.at,
    data: {
      player: { id: roll.data.player.id, name: roll.data.player.name },
      visibility: 'host',
      hidden: true,
      rolled_at: roll.data.rolled_at,
      hash: roll.data.hash ?? null,
    },
  };
}

/**
 * The form of `event` that `viewer` may see. Streams call this for every event they deliver; the
 * snapshot, the history and the exports for every roll they list.
 *
 * Every subscriber must receive every sequence number of its room: a stream that skipped one could
 * not tell a hidden event from a lost one, and would refetch it forever (issue 9, item 6). So an
 * event a viewer may not see comes back *redacted* (same `id`, `room`, `type` and `at`, its
 * `data` cut down to what the viewer may know), never dropped. Returning the same object when
 * nothing is hidden lets streams share one serialized frame per event.
 *
 * A secret roll (`visibility: "host"`, issue 14 item 5) is seen in full by the host and the
 * roller; everyone else gets {@link hideRoll}'s placeholder. On the stream it stays a placeholder
 * even after a reveal (the `roll_revealed` event that follows carries it in full).
 */
export function viewRoomEvent(event: RoomEvent, viewer: RoomEventViewer): ViewedRoomEvent {
  if (event.type !== 'roll' || maySeeRoll(event, viewer)) return event;
  // One placeholder object per event, so every stream that gets it shares one serialized frame.
  let hidden = placeholders.get(event);
  if (hidden === undefined) {
    hidden = hideRoll(event);
    placeholders.set(event, hidden);
  }
  return hidden;
}

/** Placeholders by event object; weak, so they go with the events (bounded by live events). */
const placeholders = new WeakMap<RoomEvent, HiddenRollEvent>();
