import { randomUUID } from 'node:crypto';
import { type Static, Type } from 'typebox';
import type { AppChannel, AppChannelOptions, Scheduler } from '../../../index.js';

/**
 * Who is connected to a room now (issue 14, item 2): a member is online while at least one of
 * their event streams is open on some instance. Members are `host` (a stream opened with the
 * host's account), `player:<id>`, and `spectator:<stream id>`: each spectator stream (a watch
 * link, issue 14 item 8) counts on its own, is never a player and is told apart from the host, and
 * only their number is announced.
 *
 * Each instance counts its own open streams and tells the others over an app channel
 * (`gatehouse:room-presence` on Redis): a room's member set whenever it changes there, and its
 * whole state every heartbeat. An instance not heard from for {@link PRESENCE_EXPIRY_BEATS}
 * heartbeats is dropped, so a crashed (or partitioned) instance cannot leave players shown online.
 * Pub/sub is at-most-once, so a lost change is corrected by the next heartbeat's full state.
 *
 * Bounds: local counts exist only while streams are open (capped per player, account and IP);
 * another instance's state is replaced, never appended to, by each of its messages, whose size
 * the schema caps; instances expire. The change handlers exist only while streams are open.
 */

/** Heartbeats without a message after which another instance's presence is dropped. */
export const PRESENCE_EXPIRY_BEATS = 3;

/** The app channel's name. */
export const PRESENCE_CHANNEL = 'room-presence';

const MemberKey = Type.String({
  maxLength: 80,
  pattern: '^(host|player:[A-Za-z0-9-]{1,64}|spectator:[A-Za-z0-9-]{1,64})$',
});

/** One instance's presence message: its member sets of some rooms, or of all (`full`). */
export const presenceMessageSchema = Type.Object({
  instance: Type.String({ minLength: 1, maxLength: 64 }),
  /** True: these are all the rooms with streams on that instance (any other room has none). */
  full: Type.Boolean(),
  rooms: Type.Array(
    Type.Object({
      code: Type.String({ minLength: 1, maxLength: 16 }),
      members: Type.Array(MemberKey, { maxItems: 10_000 }),
    }),
    { maxItems: 10_000 },
  ),
});

/** A presence message as it travels. */
export type PresenceMessage = Static<typeof presenceMessageSchema>;

/** Who is online in a room. */
export interface RoomPresence {
  /** Ids of the players with an open stream. */
  playerIds: string[];
  /** True while the host has a stream open (as host, not as a player). */
  host: boolean;
  /** Spectator streams open (watch links); spectators are never players. */
  spectators: number;
}

/** A member came online or went offline; `playerId` null is the host. */
export interface PresenceChange {
  room: string;
  playerId: string | null;
  online: boolean;
}

/** The number of spectators of a room changed. */
export interface SpectatorCountChange {
  room: string;
  spectators: number;
}

/** Presence of room members across instances. */
export interface Presence {
  /**
   * Counts an open stream of `playerId` (null: the host) in `room`; returns the function that
   * uncounts it (idempotent), to call when the stream ends.
   */
  connect(room: string, playerId: string | null): () => void;
  /** Counts an open spectator stream in `room`; returns its (idempotent) uncounting. */
  connectSpectator(room: string): () => void;
  /** Who is online in `room` now. */
  online(room: string): RoomPresence;
  /**
   * Calls `handler` on every change of `room`'s presence (a member online or offline, or the
   * spectator count); returns its removal.
   */
  subscribe(room: string, handler: (change: PresenceChange | SpectatorCountChange) => void): () => void;
  /** Stops the heartbeat and the channel. */
  close(): void;
}

/** Options of {@link createPresence}. */
export interface PresenceOptions {
  /** Opens the app channel (`gatehouse.openChannel`, bound). */
  openChannel: (
    options: AppChannelOptions<typeof presenceMessageSchema>,
  ) => Promise<AppChannel<PresenceMessage>>;
  clock: () => number;
  /** The core's scheduler, so a test clock drives the heartbeat. */
  scheduler: Scheduler;
  /** Milliseconds between full-state messages (the room heartbeat). */
  heartbeatMs: number;
  /** Where a throwing change handler is reported. */
  onWarning: (message: string) => void;
}

const HOST = 'host';
const SPECTATOR = 'spectator:';
const keyOf = (playerId: string | null) => (playerId === null ? HOST : `player:${playerId}`);
const isSpectator = (key: string) => key.startsWith(SPECTATOR);
const spectatorsIn = (members: Set<string>) => {
  let count = 0;
  for (const key of members) if (isSpectator(key)) count++;
  return count;
};
const changeOf = (room: string, key: string, online: boolean): PresenceChange => ({
  room,
  playerId: key === HOST ? null : key.slice('player:'.length),
  online,
});

/** Creates the {@link Presence} of this instance and joins the deployment's presence channel. */
export async function createPresence(options: PresenceOptions): Promise<Presence> {
  const { clock, scheduler, heartbeatMs, onWarning } = options;
  const instance = randomUUID();
  /** Open streams per room and member on this instance. */
  const local = new Map<string, Map<string, number>>();
  /** Other instances' member sets, and when each was last heard from. */
  const remote = new Map<string, { seenAt: number; rooms: Map<string, Set<string>> }>();
  /** Change handlers per room (streams on this instance). */
  const handlers = new Map<string, Set<(change: PresenceChange | SpectatorCountChange) => void>>();
  /** The member set last announced to a room's handlers; kept only while it has handlers. */
  const announced = new Map<string, Set<string>>();

  const membersOf = (room: string): Set<string> => {
    const members = new Set(local.get(room)?.keys() ?? []);
    for (const state of remote.values()) for (const key of state.rooms.get(room) ?? []) members.add(key);
    return members;
  };

  /** Tells `room`'s handlers what changed since the last announcement. */
  const recompute = (room: string) => {
    const listeners = handlers.get(room);
    if (listeners === undefined) return;
    const before = announced.get(room) ?? new Set<string>();
    const now = membersOf(room);
    announced.set(room, now);
    const changes: (PresenceChange | SpectatorCountChange)[] = [];
    for (const key of now) if (!isSpectator(key) && !before.has(key)) changes.push(changeOf(room, key, true));
    for (const key of before)
      if (!isSpectator(key) && !now.has(key)) changes.push(changeOf(room, key, false));
    const spectators = spectatorsIn(now);
    if (spectators !== spectatorsIn(before)) changes.push({ room, spectators });
    for (const change of changes) {
      for (const handler of listeners) {
        try {
          handler(change);
        } catch (error) {
          onWarning(`Presence handler threw: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
  };

  const roomState = (room: string) => ({ code: room, members: [...(local.get(room)?.keys() ?? [])] });

  const channel = await options.openChannel({
    name: PRESENCE_CHANNEL,
    schema: presenceMessageSchema,
    deliver(message) {
      if (message.instance === instance) return;
      const state = remote.get(message.instance) ?? { seenAt: 0, rooms: new Map<string, Set<string>>() };
      state.seenAt = clock();
      const touched = new Set<string>(message.rooms.map((entry) => entry.code));
      if (message.full) {
        for (const room of state.rooms.keys()) touched.add(room);
        state.rooms = new Map();
      }
      for (const entry of message.rooms) {
        if (entry.members.length === 0) state.rooms.delete(entry.code);
        else state.rooms.set(entry.code, new Set(entry.members));
      }
      remote.set(message.instance, state);
      for (const room of touched) recompute(room);
    },
    // Messages were lost meanwhile: the next heartbeat's full states put everything right.
  });

  const publish = (message: Omit<PresenceMessage, 'instance'>) => {
    // Never rejects (see AppChannel.publish); a lost message is corrected by the next heartbeat.
    void channel.publish({ instance, ...message });
  };

  const beat = scheduler.setInterval(() => {
    publish({ full: true, rooms: [...local.keys()].map(roomState) });
    const oldest = clock() - PRESENCE_EXPIRY_BEATS * heartbeatMs;
    for (const [id, state] of remote) {
      if (state.seenAt >= oldest) continue;
      // Not heard from for several heartbeats: crashed or cut off. Its members go offline.
      remote.delete(id);
      for (const room of state.rooms.keys()) recompute(room);
    }
  }, heartbeatMs);

  /** Counts one open stream under member `key`; returns its (idempotent) uncounting. */
  const connectKey = (room: string, key: string): (() => void) => {
    let members = local.get(room);
    if (members === undefined) {
      members = new Map();
      local.set(room, members);
    }
    const first = !members.has(key);
    members.set(key, (members.get(key) ?? 0) + 1);
    if (first) {
      publish({ full: false, rooms: [roomState(room)] });
      recompute(room);
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const current = local.get(room);
      const left = (current?.get(key) ?? 1) - 1;
      if (current === undefined) return;
      if (left > 0) {
        current.set(key, left);
        return;
      }
      current.delete(key);
      if (current.size === 0) local.delete(room);
      publish({ full: false, rooms: [roomState(room)] });
      recompute(room);
    };
  };

  return {
    connect: (room, playerId) => connectKey(room, keyOf(playerId)),

    // A key per stream: how many watch is what presence shows of spectators, never who.
    connectSpectator: (room) => connectKey(room, `${SPECTATOR}${randomUUID()}`),

    online(room) {
      const members = [...membersOf(room)];
      return {
        playerIds: members
          .filter((key) => key.startsWith('player:'))
          .map((key) => key.slice('player:'.length)),
        host: members.includes(HOST),
        spectators: members.filter(isSpectator).length,
      };
    },

    subscribe(room, handler) {
      let listeners = handlers.get(room);
      if (listeners === undefined) {
        listeners = new Set();
        handlers.set(room, listeners);
        announced.set(room, membersOf(room));
      }
      listeners.add(handler);
      const subscribed = listeners;
      return () => {
        subscribed.delete(handler);
        if (subscribed.size === 0 && handlers.get(room) === subscribed) {
          handlers.delete(room);
          announced.delete(room);
        }
      };
    },

    close() {
      beat.cancel();
      // Tell the others at once rather than leave them waiting for the expiry.
      publish({ full: true, rooms: [] });
      channel.close();
      local.clear();
      remote.clear();
      handlers.clear();
      announced.clear();
    },
  };
}
