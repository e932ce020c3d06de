import { randomUUID } from 'node:crypto';
import { type Static, Type } from 'typebox';
import type { AppChannel, AppChannelOptions, Scheduler } from '../../../index.js';
import { createKeyedThrottle } from './keyed-throttle.js';

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
 * Churn is coalesced per room (red-team 2026-12b G8): a room's changes are published to the other
 * instances, and announced to its watchers, at most once per {@link PRESENCE_COALESCE_MS}. The
 * first change of a quiet room goes out at once; the changes after it within the window go out
 * together at its end as the net difference from what was last announced (a member who came and
 * went inside the window is never announced), computed from the latest state, so the final state
 * always arrives. Streams opening and closing in a loop thus cost each watcher at most one
 * `spectators` message and one `presence` message per member per window, and the other instances
 * one message per room per window, however fast they churn.
 *
 * Bounds: local counts exist only while streams are open (capped per player, account and IP);
 * another instance's state is replaced, never appended to, by each of its messages, whose size
 * the schema caps; instances expire, and so do their rooms no message has named for as long (a
 * heartbeat sent in parts whose parts never all arrive cannot leave a room online for ever); one
 * heartbeat being collected in parts per other instance, replaced by its next heartbeat and
 * dropped with the instance. The change handlers exist only while streams are open. The
 * coalescing holds one timer per room changed within the last window (rooms with streams here, or
 * watched here), and nothing else: what goes out is read from the state when the window ends.
 */

/** Heartbeats without a message after which another instance's presence is dropped. */
export const PRESENCE_EXPIRY_BEATS = 3;

/**
 * Milliseconds between two announcements of one room's presence, to its watchers and to the other
 * instances: short enough that people see each other arrive "at once", long enough that stream
 * churn cannot turn into a frame per change per watcher (red-team 2026-12b G8).
 */
export const PRESENCE_COALESCE_MS = 500;

/** The app channel's name. */
export const PRESENCE_CHANNEL = 'room-presence';

/**
 * A member key as the channel accepts it: `kind` or `kind:id`. Wider than the kinds this version
 * knows ({@link KNOWN_MEMBER}), so a newer instance's new kind of member (as spectators once were)
 * does not make its whole message fail the schema: unknown kinds are dropped when read, counted and
 * logged once. See ARCHITECTURE.md, "Mixed versions on the bus".
 */
const MemberKey = Type.String({ maxLength: 80, pattern: '^[a-z][a-z0-9_-]{0,15}(:[A-Za-z0-9-]{1,64})?$' });

/** The member kinds this version counts. */
const KNOWN_MEMBER = /^(host|player:[A-Za-z0-9-]{1,64}|spectator:[A-Za-z0-9-]{1,64})$/;

/** One instance's presence message: its member sets of some rooms, or of all (`full`). */
export const presenceMessageSchema = Type.Object({
  instance: Type.String({ minLength: 1, maxLength: 64 }),
  /** True: these are all the rooms with streams on that instance (any other room has none). */
  full: Type.Boolean(),
  rooms: Type.Array(
    Type.Object({
      code: Type.String({ minLength: 1, maxLength: 16 }),
      // A room at its caps: MAX_PLAYERS_PER_ROOM (≤ 10 000) players, the host, and this instance's
      // spectator streams (≤ 20 links × 50), with room to spare.
      members: Type.Array(MemberKey, { maxItems: 12_000 }),
    }),
    { maxItems: 10_000 },
  ),
  /**
   * Set on a heartbeat too large for one message ({@link MAX_PRESENCE_MESSAGE_LENGTH}): it is sent
   * as `parts` messages with `full: false` (what an instance that does not know this field reads
   * as updates of those rooms), and a receiver that has all parts of beat `id` drops the sender's
   * rooms none of them named, as one `full` message would.
   */
  beat: Type.Optional(
    Type.Object({
      id: Type.String({ minLength: 1, maxLength: 64 }),
      part: Type.Integer({ minimum: 0, maximum: 9_999 }),
      parts: Type.Integer({ minimum: 1, maximum: 10_000 }),
    }),
  ),
});

/**
 * Most JSON characters a heartbeat part holds, well under the channel's 1 MiB cap, unless a single
 * room is bigger: a room always travels whole, in a part of its own. A room at the default caps
 * (100 players, the host, 20 links × 50 spectator streams under short keys) is ≈ 33 KB; at
 * `MAX_PLAYERS_PER_ROOM`'s maximum (10 000) ≈ 490 KB, still under the channel's cap.
 */
export const MAX_PRESENCE_MESSAGE_LENGTH = 256 * 1024;

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
  /** Members of kinds this version does not know, ignored since start (a newer instance's). */
  ignoredMembers(): number;
  /** Stops the heartbeat and the channel. */
  close(): void;
}

/** Options of {@link createPresence}. */
export interface PresenceOptions {
  /** Opens the app channel (`gatehouse.openChannel`, bound). */
  openChannel: (
    options: AppChannelOptions<typeof presenceMessageSchema>,
  ) => Promise<AppChannel<PresenceMessage>>;
  /** The core's scheduler, so a test clock drives the heartbeat. */
  scheduler: Scheduler;
  /** Milliseconds between full-state messages (the room heartbeat). */
  heartbeatMs: number;
  /** Where a throwing change handler is reported. */
  onWarning: (message: string) => void;
  /**
   * Milliseconds between two announcements of a room's presence (watchers and other instances).
   * @default PRESENCE_COALESCE_MS
   */
  coalesceMs?: number;
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
const sameMembers = (a: Set<string> | undefined, b: Set<string> | undefined) => {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size) return false;
  for (const key of a) if (!b.has(key)) return false;
  return true;
};
const changeOf = (room: string, key: string, online: boolean): PresenceChange => ({
  room,
  playerId: key === HOST ? null : key.slice('player:'.length),
  online,
});

/** Creates the {@link Presence} of this instance and joins the deployment's presence channel. */
export async function createPresence(options: PresenceOptions): Promise<Presence> {
  const { scheduler, heartbeatMs, onWarning } = options;
  const coalesceMs = options.coalesceMs ?? PRESENCE_COALESCE_MS;
  const instance = randomUUID();
  /** Open streams per room and member on this instance. */
  const local = new Map<string, Map<string, number>>();
  /**
   * Other instances' member sets, the heartbeat (`beat`) in which each was last heard from, and
   * the one in which each of its rooms was last named by one of its messages (`named`: a room a heartbeat part that never arrives left
   * unconfirmed ages out like a silent instance, see the heartbeat below).
   */
  const remote = new Map<
    string,
    { seenAt: number; rooms: Map<string, Set<string>>; named: Map<string, number> }
  >();
  /**
   * This instance's heartbeats so far: `seenAt` and `named` are counted in them, not read off the
   * wall clock. Silence is measured by the (monotonic) heartbeat timer: stepped back an hour, the
   * wall clock kept a crashed instance's players shown online for that hour; stepped forward,
   * every other instance's members went offline at once.
   */
  let beat = 0;
  /** Change handlers per room (streams on this instance). */
  const handlers = new Map<string, Set<(change: PresenceChange | SpectatorCountChange) => void>>();
  /** The member set last announced to a room's handlers; kept only while it has handlers. */
  const announced = new Map<string, Set<string>>();

  /** Members of kinds this version does not know, dropped on receipt (see {@link MemberKey}). */
  let unknownMembers = 0;
  /** Each remote instance's chunked heartbeat being collected: its parts seen, and rooms named. */
  const beats = new Map<string, { id: string; parts: number; seen: Set<number>; rooms: Set<string> }>();
  /**
   * Spectator keys: this instance's prefix and a counter, short (≈ 25 characters, where a UUID
   * made 46) yet unique across instances, since a room's members are the union of every instance's.
   */
  const spectatorPrefix = `${SPECTATOR}${instance.replaceAll('-', '').slice(0, 12)}-`;
  let spectatorSerial = 0;

  const membersOf = (room: string): Set<string> => {
    const members = new Set(local.get(room)?.keys() ?? []);
    for (const state of remote.values()) for (const key of state.rooms.get(room) ?? []) members.add(key);
    return members;
  };

  /** Tells `room`'s handlers what changed since the last announcement (through {@link announce}). */
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

  /**
   * Announces `room`'s changes to its handlers, coalesced. Only rooms with handlers on this
   * instance are triggered, so the windows are bounded by the rooms this instance streams.
   */
  const announce = createKeyedThrottle(scheduler, coalesceMs, recompute);
  const changed = (room: string) => {
    if (handlers.has(room)) announce.trigger(room);
  };

  const roomState = (room: string) => ({ code: room, members: [...(local.get(room)?.keys() ?? [])] });

  const channel = await options.openChannel({
    name: PRESENCE_CHANNEL,
    schema: presenceMessageSchema,
    deliver(message) {
      if (message.instance === instance) return;
      const state = remote.get(message.instance) ?? {
        seenAt: 0,
        rooms: new Map<string, Set<string>>(),
        named: new Map<string, number>(),
      };
      state.seenAt = beat;
      // What the sender had before, to announce only rooms whose members changed: a heartbeat
      // repeats every room's state, and a room's announcement opens its coalescing window.
      const before = new Map(state.rooms);
      const named = new Set<string>(message.rooms.map((entry) => entry.code));
      const touched = new Set<string>();
      if (message.full) {
        for (const room of state.rooms.keys()) named.add(room);
        state.rooms = new Map();
        state.named = new Map();
        beats.delete(message.instance);
      }
      for (const entry of message.rooms) {
        const members = new Set<string>();
        for (const key of entry.members) {
          if (KNOWN_MEMBER.test(key)) members.add(key);
          else if (unknownMembers++ === 0) {
            onWarning(
              'Presence members of a kind this version does not know (from a newer instance?) are ignored',
            );
          }
        }
        if (members.size === 0) {
          state.rooms.delete(entry.code);
          state.named.delete(entry.code);
        } else {
          state.rooms.set(entry.code, members);
          state.named.set(entry.code, state.seenAt);
        }
      }
      if (message.beat !== undefined && !message.full) {
        const { id, part, parts } = message.beat;
        let beat = beats.get(message.instance);
        if (beat === undefined || beat.id !== id || beat.parts !== parts) {
          beat = { id, parts, seen: new Set(), rooms: new Set() };
          beats.set(message.instance, beat);
        }
        if (part < parts) {
          beat.seen.add(part);
          for (const entry of message.rooms) beat.rooms.add(entry.code);
        }
        if (beat.seen.size === parts) {
          // Every part of this beat arrived: the sender has streams in those rooms only.
          for (const room of state.rooms.keys()) {
            if (beat.rooms.has(room)) continue;
            state.rooms.delete(room);
            state.named.delete(room);
            touched.add(room);
          }
          beats.delete(message.instance);
        }
      }
      remote.set(message.instance, state);
      for (const room of named) if (!sameMembers(before.get(room), state.rooms.get(room))) touched.add(room);
      for (const room of touched) changed(room);
    },
    // Messages were lost meanwhile: the next heartbeat's full states put everything right.
  });

  const publish = (message: Omit<PresenceMessage, 'instance'>) => {
    // Never rejects (see AppChannel.publish); a lost message is corrected by the next heartbeat.
    void channel.publish({ instance, ...message });
  };

  /**
   * Publishes this instance's member set of a room, coalesced: at the caps a room's set is ≈ 33 KB,
   * so one message per change would multiply churn by the instances. The set is read when the
   * message goes, so the last one always carries the latest state (an empty set: no streams left).
   */
  const share = createKeyedThrottle(scheduler, coalesceMs, (room) =>
    publish({ full: false, rooms: [roomState(room)] }),
  );

  const heartbeat = scheduler.setInterval(() => {
    beat += 1;
    for (const message of heartbeatMessages([...local.keys()].map(roomState))) publish(message);
    const oldest = beat - PRESENCE_EXPIRY_BEATS;
    for (const [id, state] of remote) {
      if (state.seenAt >= oldest) {
        // Heard from, but a room its messages have not named for as long: every heartbeat names
        // every room the sender has, so it left that room and the message saying so was lost,
        // and the heartbeats that would drop it never arrived whole (a part lost each time).
        // Without this, its members would stay online for as long as the sender lives; with it, a
        // single lost part changes nothing (the room is named again by the next heartbeat).
        for (const [room, namedAt] of state.named) {
          if (namedAt >= oldest) continue;
          state.rooms.delete(room);
          state.named.delete(room);
          changed(room);
        }
        continue;
      }
      // Not heard from for several heartbeats: crashed or cut off. Its members go offline.
      remote.delete(id);
      beats.delete(id);
      for (const room of state.rooms.keys()) changed(room);
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
      share.trigger(room);
      changed(room);
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
      share.trigger(room);
      changed(room);
    };
  };

  return {
    connect: (room, playerId) => connectKey(room, keyOf(playerId)),

    // A key per stream: how many watch is what presence shows of spectators, never who.
    // Short keys keep a room at its spectator cap (1000 streams) to ≈ 28 KB per message.
    connectSpectator: (room) => connectKey(room, `${spectatorPrefix}${(spectatorSerial++).toString(36)}`),

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

    ignoredMembers: () => unknownMembers,

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
      heartbeat.cancel();
      share.clear();
      announce.clear();
      // Tell the others at once rather than leave them waiting for the expiry.
      publish({ full: true, rooms: [] });
      channel.close();
      local.clear();
      remote.clear();
      beats.clear();
      handlers.clear();
      announced.clear();
    },
  };
}

type RoomEntry = PresenceMessage['rooms'][number];

/**
 * One heartbeat's messages: a single `full` message when it fits in
 * {@link MAX_PRESENCE_MESSAGE_LENGTH}, else parts of at most that size (see the schema's `beat`).
 */
export function heartbeatMessages(rooms: RoomEntry[]): Omit<PresenceMessage, 'instance'>[] {
  // The envelope and the instance id add < 200 characters.
  const budget = MAX_PRESENCE_MESSAGE_LENGTH - 200;
  const sizes = rooms.map((entry) => JSON.stringify(entry).length + 1);
  if (sizes.reduce((sum, size) => sum + size, 0) <= budget) return [{ full: true, rooms }];
  const chunks: RoomEntry[][] = [];
  let current: RoomEntry[] = [];
  let size = 0;
  for (const [index, entry] of rooms.entries()) {
    const entrySize = sizes[index] ?? 0;
    if (current.length > 0 && size + entrySize > budget) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += entrySize;
  }
  chunks.push(current);
  const id = randomUUID();
  return chunks.map((chunk, part) => ({
    full: false,
    rooms: chunk,
    beat: { id, part, parts: chunks.length },
  }));
}
