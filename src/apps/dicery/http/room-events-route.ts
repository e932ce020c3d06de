import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  enforceAddressRateLimit,
  enforceRateLimit,
  errorResponses,
  problemRef,
} from '../../../http/index.js';
import {
  addressBucket,
  BoundedMap,
  createConcurrencyCaps,
  createSourceTally,
  GatehouseError,
  type ScheduledTimer,
} from '../../../index.js';
import {
  type DiceryError,
  type DiceryErrorCode,
  roomNotFound,
  spectatorLinkInvalid,
} from '../core/errors.js';
import { isKnownRoomEvent, type LoggedRoomEvent } from '../core/room-bus.js';
import { type ViewedRoomEvent, viewRoomEvent } from '../core/room-event-view.js';
import { ROOM_EVENTS_MAX_PAGE } from '../core/room-service.js';
import type {
  PresenceEventData,
  ResyncEventData,
  SpectatorsEventData,
  StreamEndReason,
} from '../shared/wire.js';
import type { DiceryContext } from './dicery-context.js';
import { type RoomGuards, roomOf, standingError, VIEWER_SECURITY } from './room-auth.js';
import { RoomCodeParam } from './room-code-param.js';
import { toEventPayload } from './room-views.js';

/** Failed room reads in a row after which a reconciliation pass stops (see `reconcile`). */
const RECONCILE_FAILURES_TO_STOP = 3;

/** Options of the room event stream route. */
export interface RoomEventsRouteOptions {
  /**
   * Milliseconds between `: heartbeat` comments, and between re-checks of open streams against the
   * database (see {@link registerRoomEventsRoute}).
   * @default settings.roomHeartbeatInterval × 1000 (15 000)
   */
  heartbeatIntervalMs?: number;
  /**
   * Reconnection delay suggested to clients with the SSE `retry:` field, in ms.
   * @default 3000
   */
  retryMs?: number;
  /**
   * Bytes a stream may have queued in its socket before it is dropped as too slow to keep up; the
   * client reconnects with `Last-Event-ID` and catches up from the log instead of the server
   * buffering for it without bound.
   * @default 1 MiB
   */
  maxBufferedBytes?: number;
}

/** One open event stream. */
interface Stream {
  code: string;
  /** The player it was opened with, or null for the host. */
  playerId: string | null;
  /**
   * A host stream (opened with the host's account credential alone): it sees secret rolls. A
   * player stream never does, even when its browser is also signed in as the host, because only a
   * host stream ends with the host's session.
   */
  host: boolean;
  /** The seat generation of the player's room token; a newer one in the database ends the stream. */
  seatGeneration: number;
  /**
   * The watch link of a spectator stream (issue 14, item 8), else null. A spectator stream is
   * neither a player's nor the host's: it sees what other players see, and ends with its link.
   */
  spectatorLinkId: string | null;
  /** The spectator's own credential (one exchange of the link), else null; the stream ends with it. */
  spectatorSessionId: string | null;
  /** The host's account session, or null for a player. */
  hostSessionId: string | null;
  /**
   * The account a host stream was opened as, else null: a hand-over ends the stream even when its
   * `host_changed` event never reaches it (the stream started after it, or the bus lost it).
   */
  hostUserId: string | null;
  /** The client's network (IPv4 address, IPv6 /48): a full watch link's streams are shared by it. */
  network: string;
  /** Frees what the stream caps count this stream under (player or account, client IP); idempotent. */
  releaseSlot: () => void;
  /** The credential that opened it; the stream ends with it. */
  credential: 'room_token' | 'access_token' | 'cookie_session' | 'watch_link';
  /** A player stream's room token `iat`, epoch seconds, else null: a revoke-all cut-off past it ends the stream. */
  tokenIssuedAt: number | null;
  /**
   * The revocation cut-off (`gatehouse revoke-all`) a host stream's session was last known alive
   * under, epoch ms: when the cut-off rises past it, the session is read again.
   */
  cutoffSeen: number;
  /** When that credential expires, epoch ms (a cookie session's may move later on a re-check). */
  expiresAt: number;
  /** True while a cookie session is re-read after its expiry passed. */
  renewing: boolean;
  raw: ServerResponse | undefined;
  /**
   * Sequence number of the newest event written (or of the `resync` written instead of older
   * ones). The stream writes exactly `lastId + 1` next: older or equal ids are skipped (replay and
   * live overlap), later ones wait for a refetch.
   */
  lastId: number;
  /**
   * Defined while the stream reads the log (first replay, or a refetch after a gap): events
   * received from the bus meanwhile wait here and are written, in order, once the log caught up.
   */
  pending: LoggedRoomEvent[] | undefined;
  closed: boolean;
  unsubscribe: () => void;
  /** Uncounts the stream's presence and stops its presence events (set once it is live). */
  presenceOff: () => void;
  /** On the core's scheduler, so a test clock drives it like the heartbeat. */
  expiry: ScheduledTimer | undefined;
  /** Set while a replay waits for the socket to drain; ending the stream calls it. */
  resume: (() => void) | undefined;
}

const LAST_EVENT_ID = /^\d{1,15}$/;

/**
 * The concurrent-stream cap of an IPv6 /48 is this many times `MAX_STREAMS_PER_IP` (which counts
 * per /64): one site's network (a /48, or the 256 /64s of a /56) no longer gets 50 streams per
 * /64 (red-team G4), while the /64s of one network still each get their own share. The login
 * breaker counts one /48 as one source the same way.
 */
export const STREAMS_PER_NETWORK_FACTOR = 4;

const MINUTE_MS = 60_000;

/**
 * Least time between two displacements one client network makes in one watch link's full stream
 * share, per instance (see `displaceFromLink`). Without it a newcomer could open, displace and
 * leave at once, again and again: each displaced viewer's reconnect is charged to its own open
 * limits, which a class behind one NAT shares, until their 429 ended its EventSource for good (a
 * review's finding on RTL2's first version); at one per 5 s, such churn costs the audience at most
 * 12 opens a minute per attacking network. Per network, not per link: one interval for the whole
 * link was a slot an attacker spent every 5 s to keep every honest newcomer out (the next review).
 */
export const LINK_DISPLACEMENT_INTERVAL_MS = 5_000;

/** (watch link, network) pairs with a recent displacement kept per instance (oldest forgotten first). */
const DISPLACEMENT_MEMORY = 10_000;

/** Refetch rounds a stream tries before it gives up on a gap and lets the client resume. */
const MAX_CATCH_UP_ROUNDS = 3;

/**
 * Most bus events a stream holds while it reads the log (replay or refetch); beyond it the stream
 * ends and its client resumes with `Last-Event-ID`. A replay waits for a slow client's socket to
 * drain, so live events pile up here meanwhile: this bounds them (≈ 2.4 MB of worst-case rolls).
 */
const MAX_PENDING_EVENTS = 200;
// setTimeout fires at once when asked for more than 2^31 - 1 ms (about 24.8 days), less than the
// default 30-day session: longer waits are split and re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Maps live events to their SSE frame: built once per event, written to every subscriber. */
const frames = new WeakMap<ViewedRoomEvent, string>();

function frameOf(event: ViewedRoomEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    // JSON.stringify escapes CR and LF, so the data is always one line (WHATWG HTML §9.2.6).
    frame = `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(toEventPayload(event))}\n\n`;
    frames.set(event, frame);
  }
  return frame;
}

/** `?presence=true` (the schema has made it a boolean). */
function wantsPresence(request: FastifyRequest): boolean {
  const search: unknown = request.query;
  return typeof search === 'object' && search !== null && 'presence' in search && search.presence === true;
}

/** An SSE `spectators` message (no `id:`): how many watch through watch links now. */
function spectatorsFrame(count: number): string {
  const data: SpectatorsEventData = { count };
  return `event: spectators\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An SSE `presence` message (no `id:`; see {@link PresenceEventData}). */
function presenceFrame(playerId: string | null, online: boolean): string {
  const data: PresenceEventData = { player_id: playerId, online };
  return `event: presence\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * An SSE `resync` message (see {@link ResyncEventData}). Its `id:` is the room's newest event, so
 * an EventSource's next reconnect resumes after it instead of from the events it was not sent.
 */
function resyncFrame(lastEventId: number): string {
  const data: ResyncEventData = { last_event_id: lastEventId };
  return `id: ${lastEventId}\nevent: resync\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Where a stream opened with `lastEventId` (undefined: a fresh connect) starts, in a room whose
 * newest event is `lastEventSeq`: after the client's id when at most `maxReplay` events are
 * missing, else after the newest event with a `resync` in place of the missing ones. An id beyond
 * the newest cannot be one of this room's (e.g. a global id kept from before migration 006):
 * waiting for that number would skip real events, so it counts as up to date.
 */
function replayStart(
  lastEventId: number | undefined,
  lastEventSeq: number,
  maxReplay: number,
): { after: number; resync: boolean } {
  if (lastEventId === undefined || lastEventId >= lastEventSeq) return { after: lastEventSeq, resync: false };
  if (lastEventSeq - lastEventId > maxReplay) return { after: lastEventSeq, resync: true };
  return { after: lastEventId, resync: false };
}

function badLastEventId(): DiceryError {
  const message = 'must be a non-negative integer (an event id)';
  return new GatehouseError('VALIDATION_FAILED', `Last-Event-ID ${message}`, {
    errors: [{ field: 'last_event_id', message }],
  });
}

/** `Last-Event-ID` (sent by EventSource on reconnect) or `?last_event_id=` (for a first connect). */
function lastEventIdOf(request: FastifyRequest): number | undefined {
  const header = request.headers['last-event-id'];
  const search: unknown = request.query;
  const fromQuery =
    typeof search === 'object' && search !== null && 'last_event_id' in search
      ? search.last_event_id
      : undefined;
  const query = typeof fromQuery === 'string' ? fromQuery : undefined;
  const raw = typeof header === 'string' && header !== '' ? header : query;
  if (raw === undefined || raw === '') return undefined;
  if (!LAST_EVENT_ID.test(raw)) throw badLastEventId();
  return Number(raw);
}

/**
 * `GET /rooms/{code}/events`: the room's events as Server-Sent Events.
 *
 * Each stream subscribes to the room on the bus; an event is serialized to its SSE frame once
 * per instance (cached by event object) and the same string is written to every stream.
 *
 * Order and completeness: event ids are the room's sequence numbers (1, 2, 3… with no gap, see
 * `RoomStore.appendEvent`), and a stream writes every number exactly once, in order. The bus may
 * deliver out of order (two instances, two connections) or lose a message (Redis pub/sub is
 * at-most-once), so an event beyond `lastId + 1` makes the stream read the missing range from the
 * log (`RoomService.catchUp`) before writing it; if the log still cannot fill the gap after a few
 * rounds the stream ends and the client resumes with `Last-Event-ID`. A lost event with nothing
 * after it is caught by the heartbeat, which also compares the room's `last_event_seq` with each
 * stream's `lastId` and refetches the tail.
 *
 * Replay depth: a stream resumed (`Last-Event-ID`, `?last_event_id=`) from more than
 * `settings.roomMaxReplayEvents` events, or more than `settings.roomMaxReplayBytes` of them, behind
 * the room's `last_event_seq` replays nothing. Room
 * logs grow for as long as a room lives, and opens are only rate limited, so a client reconnecting
 * from id 0 would otherwise make the server read and write the whole log on every open. It gets
 * one `resync` message instead, carrying `id: <last_event_seq>` (its client must re-read the room),
 * and then starts exactly as a fresh connect does, after that seq, with the guarantees above for
 * every event after it. So one open replays at most that many events, and that many bytes, of
 * the log, however old the room. (Not to be confused with the bus's resync below, which re-checks open streams.)
 *
 * A stream ends on `room_closed`, on `player_left` for its own player (after writing the event),
 * when the client goes away, when the server closes, and with the credential that opened it:
 * when the room token or the host's access token expires, when the host's cookie session passes
 * its absolute or idle expiry, and when the host's session is revoked, each after a final
 * `stream_end` event saying why. A timer ends it on time, and each heartbeat checks again, so no
 * stream outlives its credential by more than a heartbeat interval. Because
 * Redis pub/sub may drop a message, and a kick could land between the guard's check and the
 * subscription, every heartbeat also re-checks open streams against the database: one query
 * per room with streams on this instance (not one per stream), ending streams whose room closed
 * or whose player is gone, and host streams whose account session was revoked.
 *
 * The stream caps (`maxStreamsPerPlayer`, `maxStreamsPerAccount`, `maxStreamsPerIp` per address
 * and its multiple per IPv6 /48, `maxStreamsTotal`) are counted per instance, with
 * `createConcurrencyCaps` (entries exist only while a stream counts under them, as for exports);
 * opens are rate limited over the counters.
 */
export function registerRoomEventsRoute(
  app: FastifyInstance,
  { gatehouse, dicery }: DiceryContext,
  guards: RoomGuards,
  options: RoomEventsRouteOptions = {},
): void {
  const { rooms, roomStore, roomBus, presence, settings } = dicery;
  const { clock, counters } = gatehouse;
  const heartbeatMs = options.heartbeatIntervalMs ?? settings.roomHeartbeatInterval * 1000;
  const retryMs = options.retryMs ?? 3000;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  if (!Number.isFinite(heartbeatMs) || heartbeatMs < 10) {
    throw new Error(
      `room events: the heartbeat interval must be at least 10 ms, got ${heartbeatMs} ms ` +
        '(set ROOM_HEARTBEAT_INTERVAL, or the heartbeatIntervalMs option, to a sane value such as 15s)',
    );
  }

  const streams = new Set<Stream>();
  const streamSlots = createConcurrencyCaps();
  /** When each network last displaced a stream of each watch link (bounded; see LINK_DISPLACEMENT_INTERVAL_MS). */
  const displacedAt = new BoundedMap<string, number>(DISPLACEMENT_MEMORY);

  /**
   * Ends a stream. With a `reason` the credential ended it: a final `stream_end` event tells the
   * client not to reconnect with the same credential.
   */
  const end = (stream: Stream, comment?: string, reason?: StreamEndReason) => {
    if (stream.closed) return;
    stream.closed = true;
    stream.resume?.();
    stream.unsubscribe();
    stream.presenceOff();
    stream.expiry?.cancel();
    streams.delete(stream);
    stream.releaseSlot();
    if (stream.raw !== undefined && !stream.raw.writableEnded) {
      const final = reason === undefined ? '' : `event: stream_end\ndata: ${JSON.stringify({ reason })}\n\n`;
      const note = comment === undefined ? '' : `: ${comment}\n\n`;
      stream.raw.end(final + note === '' ? undefined : final + note);
    }
  };

  /**
   * Makes room in watch link `linkId`'s full stream share for a spectator from `network`, when
   * its other `caps` have room: ends the oldest stream of the network holding the most of the
   * link's streams, if it holds at least two more than `network` does. Red-team 2026-12t RTL2: the
   * share was first come, first served, so four IPv4 addresses (or one IPv6 /48) held all of a
   * shared link's streams and every other viewer was refused; a class behind one NAT may still
   * fill the link while nobody else watches. The margin of two keeps it stable: the displaced
   * network still holds at least as many as the newcomer then, so its client's reconnect (the
   * ended stream gets no `stream_end`: its credential still holds) is refused, not displacing in
   * turn; networks holding one stream each are never rotated out by newcomers. At most one
   * displacement per newcomer network and link every {@link LINK_DISPLACEMENT_INTERVAL_MS}. Scans the
   * open streams only when a link is full, which the open limits bound.
   */
  const displaceFromLink = (
    linkId: string,
    network: string,
    caps: readonly { key: string; max: number }[],
  ): boolean => {
    const linkKey = `watch:${linkId}`;
    if (caps.some((cap) => cap.key !== linkKey && streamSlots.held(cap.key) >= cap.max)) return false;
    const held = createSourceTally();
    for (const stream of streams) if (stream.spectatorLinkId === linkId) held.add(stream.network);
    const heaviest = held.evictionCandidate(network, 2);
    if (heaviest === undefined) return false;
    const now = clock();
    const displacer = `${linkId} ${network}`;
    const last = displacedAt.get(displacer);
    if (last !== undefined && now - last < LINK_DISPLACEMENT_INTERVAL_MS) return false;
    for (const stream of streams) {
      if (stream.spectatorLinkId !== linkId || stream.network !== heaviest) continue;
      end(stream, "displaced: this watch link's streams are shared between networks");
      // Deleted first: a set moves the pair to the newest end of the bounded map.
      displacedAt.delete(displacer);
      displacedAt.set(displacer, now);
      return true;
    }
    return false;
  };

  /** Schedules {@link expire} for when the stream's credential expires. */
  const arm = (stream: Stream) => {
    stream.expiry?.cancel();
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, stream.expiresAt - clock()));
    stream.expiry = gatehouse.scheduler.setTimeout(() => void expire(stream), delay);
  };

  /**
   * Ends a stream whose credential expired, or re-arms its timer when it has not (yet). A cookie
   * session is re-read first: requests made since the stream opened may have pushed its idle
   * expiry back, and only an idle or absolute expiry that really passed ends the stream.
   */
  const expire = async (stream: Stream) => {
    if (stream.closed || stream.renewing) return;
    if (stream.expiresAt > clock()) {
      arm(stream);
      return;
    }
    if (stream.credential !== 'cookie_session' || stream.hostSessionId === null) {
      end(stream, undefined, 'token_expired');
      return;
    }
    await recheckSession(stream, stream.hostSessionId);
  };

  /** Session re-checks under way (never rejecting), for close: they read the database. */
  const rechecks = new Set<Promise<void>>();
  /**
   * Reads a host stream's account session again: ends the stream when it is gone or revoked, else
   * moves a cookie session's expiry to what the row now says and re-arms the timer.
   */
  const recheckSession = (stream: Stream, sessionId: string): Promise<void> => {
    if (stream.closed || stream.renewing) return Promise.resolve();
    const recheck = readSessionAgain(stream, sessionId).finally(() => rechecks.delete(recheck));
    rechecks.add(recheck);
    return recheck;
  };
  const readSessionAgain = async (stream: Stream, sessionId: string) => {
    stream.renewing = true;
    try {
      const check = await gatehouse.sessions.check(sessionId);
      if (!check.ok) {
        end(stream, undefined, check.reason === 'revoked' ? 'session_revoked' : 'session_ended');
      } else if (stream.credential === 'cookie_session') {
        stream.expiresAt = check.expiresAt;
        arm(stream);
      }
    } catch (error) {
      // The session cannot be shown to be alive: end the stream without a reason, so the client
      // reconnects and the guard decides (a 503 while the database is away, never a sign-out).
      app.log.warn({ err: error }, 'room stream session re-check failed');
      end(stream, 'session check failed');
    } finally {
      stream.renewing = false;
    }
  };

  const write = (stream: Stream, chunk: string) => {
    const { raw } = stream;
    if (stream.closed || raw === undefined) return;
    raw.write(chunk);
    if (raw.writableLength > maxBuffered) {
      // Too slow to keep up: drop it now rather than keep its backlog in memory.
      end(stream);
      raw.destroy();
    }
  };

  /**
   * Resolves once the stream's socket has room again (`drain`), or the stream or socket ended: the
   * replay writes a page one event at a time under this backpressure instead of queueing it all
   * (red-team F1: a replay page went over the slow-client limit and the stream was dropped, then
   * reread on every reconnect).
   */
  const drained = (stream: Stream): Promise<void> =>
    new Promise((resolve) => {
      const { raw } = stream;
      if (stream.closed || raw === undefined || !raw.writableNeedDrain) {
        resolve();
        return;
      }
      const done = () => {
        raw.off('drain', done);
        raw.off('close', done);
        stream.resume = undefined;
        resolve();
      };
      stream.resume = done;
      raw.on('drain', done);
      raw.on('close', done);
    });

  /** Writes the event numbered `stream.lastId + 1` (the caller checked), as the stream may see it. */
  const deliver = (stream: Stream, event: LoggedRoomEvent) => {
    stream.lastId = event.id;
    // A newer instance's event type (rolling deploy): it takes its number, and nothing is sent. A
    // client that resumes from an earlier id gets it skipped again; one on a newer instance sees it.
    if (!isKnownRoomEvent(event)) return;
    write(stream, frameOf(viewRoomEvent(event, { playerId: stream.playerId, host: stream.host })));
    if (event.type === 'room_closed') end(stream);
    else if (event.type === 'player_left' && event.data.player.id === stream.playerId) end(stream);
    // The host changed: a host stream may belong to the old one; its client reconnects and the
    // guard decides again.
    else if (event.type === 'host_changed' && stream.host) end(stream);
    else if (event.type === 'spectator_link_revoked' && event.data.link_id === stream.spectatorLinkId)
      end(stream, undefined, 'link_revoked');
  };

  /**
   * Reads the log after `stream.lastId` and writes it, then the events buffered in
   * `stream.pending` meanwhile, in sequence order. Call with `stream.pending` defined.
   */
  const catchUp = async (stream: Stream): Promise<void> => {
    try {
      for (let round = 1; !stream.closed; round++) {
        let page: LoggedRoomEvent[];
        let progressed: boolean;
        do {
          const before = stream.lastId;
          page = await rooms.catchUp(stream.code, stream.lastId);
          for (const event of page) {
            if (stream.closed) return;
            // The log has no gaps, so after the first page this is always the next number.
            if (event.id === stream.lastId + 1) deliver(stream, event);
            await drained(stream);
          }
          progressed = stream.lastId > before;
          // A full page means more may follow; no progress (a hole in the log itself) must not spin.
        } while (page.length === ROOM_EVENTS_MAX_PAGE && progressed && !stream.closed);
        const waiting = (stream.pending ?? []).sort((a, b) => a.id - b.id);
        stream.pending = [];
        for (const [index, event] of waiting.entries()) {
          if (stream.closed) return;
          if (event.id <= stream.lastId) continue;
          if (event.id !== stream.lastId + 1) {
            // Still a hole: keep the rest and read the log again.
            stream.pending.push(...waiting.slice(index));
            break;
          }
          deliver(stream, event);
        }
        if (stream.pending.length === 0) {
          stream.pending = undefined;
          return;
        }
        if (round >= MAX_CATCH_UP_ROUNDS) {
          end(stream, 'missed events; reconnect with Last-Event-ID');
          return;
        }
      }
    } catch (error) {
      // Ending is safe: the client reconnects with Last-Event-ID and resumes from the log.
      app.log.warn({ err: error }, 'room event catch-up failed');
      end(stream, 'reconnect with Last-Event-ID');
    }
  };

  /** An event from the bus: written if it is the next one, refetched around if it skips ahead. */
  const receive = (stream: Stream, event: LoggedRoomEvent) => {
    if (stream.closed || event.id <= stream.lastId) return;
    if (stream.pending !== undefined) {
      // Bounded: a stream whose log read stalls (database slow or down) is ended rather than
      // buffering the room's traffic without limit; its client resumes with Last-Event-ID.
      if (stream.pending.length >= MAX_PENDING_EVENTS) {
        const stuck = stream.resume !== undefined;
        end(stream, 'reconnect with Last-Event-ID');
        // Its replay waits on a socket the client does not read: ending it politely would wait too.
        if (stuck) stream.raw?.destroy();
      } else stream.pending.push(event);
    } else if (event.id === stream.lastId + 1) deliver(stream, event);
    else {
      stream.pending = [event];
      void catchUp(stream);
    }
  };

  /** Starts a refetch of the log's tail unless one is running. */
  const catchUpTail = (stream: Stream): Promise<void> => {
    if (stream.closed || stream.pending !== undefined) return Promise.resolve();
    stream.pending = [];
    return catchUp(stream);
  };

  /** Ends streams the database says must not be open any more (see the TSDoc above). */
  let reconciling = false;
  // A resync while a pass ran: one more pass follows, which reads every room afresh. (A heartbeat
  // that finds a pass running is skipped: passes slower than the beat must not queue up.)
  let reconcileAgain = false;
  /** The pass under way, for close (it never rejects). */
  let reconcilePass: Promise<void> | undefined;
  /** Set by preClose: no pass follows the one under way. */
  let closing = false;
  const reconcile = (afterRunning = false): Promise<void> => {
    if (reconciling) {
      if (afterRunning) reconcileAgain = true;
      return reconcilePass ?? Promise.resolve();
    }
    if (streams.size === 0) return Promise.resolve();
    reconciling = true;
    reconcilePass = reconcilePassOnce();
    return reconcilePass;
  };
  const reconcilePassOnce = async () => {
    try {
      const byRoom = new Map<string, Stream[]>();
      const now = clock();
      const cutoff = gatehouse.sessions.revocationCutoff();
      for (const stream of streams) {
        if (stream.hostSessionId !== null && gatehouse.sessions.isRevoked(stream.hostSessionId)) {
          end(stream, undefined, 'session_revoked');
          continue;
        }
        // `gatehouse revoke-all` (after a restore) refuses every credential issued before its
        // cut-off, including ones the restored database never knew and its broadcast could not
        // name: a player's room token by its `iat` (the browser renews it from its seat, as after
        // an expiry), a host's session by reading it again (gone or revoked ends the stream).
        if (stream.tokenIssuedAt !== null && gatehouse.sessions.isCutOff(stream.tokenIssuedAt)) {
          end(stream, undefined, 'token_revoked');
          continue;
        }
        // (Not while an expiry re-check runs: it may have read before the cut-off; the next beat does it.)
        if (stream.hostSessionId !== null && cutoff > stream.cutoffSeen && !stream.renewing) {
          stream.cutoffSeen = cutoff;
          void recheckSession(stream, stream.hostSessionId);
        }
        // Backs up the expiry timer (a clock that jumped, a timer that fired late): no stream
        // outlives its credential by more than a heartbeat interval.
        if (stream.expiresAt <= now) {
          void expire(stream);
          continue;
        }
        const list = byRoom.get(stream.code);
        if (list === undefined) byRoom.set(stream.code, [stream]);
        else list.push(stream);
      }
      // Only streams listed before the query are judged by it: a player who joins and connects
      // while it runs must not be mistaken for a departed one. A room whose reads fail (a statement
      // timeout, a bad row) is skipped, not the rest of the pass, or the rooms after it would never
      // be checked while it kept failing. Several failures in a row end the pass: the database is
      // likely down, and every further read would fail too, each holding the pool for its timeout.
      // (Not isDatabaseUnavailable alone: it counts a statement timeout as an outage.)
      let failuresInARow = 0;
      for (const [code, list] of byRoom) {
        // Ended meanwhile (a shutdown ends every stream): nothing left to judge in this room.
        if (list.every((stream) => stream.closed)) continue;
        try {
          await reconcileRoom(code, list, now);
          failuresInARow = 0;
        } catch (error) {
          app.log.warn({ err: error, room: code }, 'room stream reconciliation failed for a room');
          failuresInARow += 1;
          if (failuresInARow >= RECONCILE_FAILURES_TO_STOP) break;
        }
      }
    } catch (error) {
      app.log.warn({ err: error }, 'room stream reconciliation failed');
    } finally {
      reconciling = false;
      reconcilePass = undefined;
      if (reconcileAgain && !closing) {
        reconcileAgain = false;
        void reconcile();
      }
    }
  };

  /** One room's part of {@link reconcile}: its streams, listed before the room was read. */
  const reconcileRoom = async (code: string, list: Stream[], now: number) => {
    const room = await roomStore.findRoom(code);
    if (room === undefined) {
      for (const stream of list) end(stream, 'room closed');
      return;
    }
    // Tail check: an event lost on the bus with nothing after it shows no gap to the stream,
    // only a room whose counter is ahead of it. A closed room's streams first get what they
    // missed (its last event is room_closed, which ends them).
    for (const stream of list) {
      if (stream.lastId < room.lastEventSeq || room.state !== 'open') {
        void catchUpTail(stream).then(() => {
          if (room.state !== 'open') end(stream, 'room closed');
        });
      }
    }
    if (room.state !== 'open') return;
    // A hand-over whose `host_changed` the bus lost, with nothing after it to show a gap.
    for (const stream of list) {
      if (stream.hostUserId !== null && stream.hostUserId !== room.hostUserId) end(stream, 'host changed');
    }
    const spectatorSessions = list.flatMap((stream) =>
      stream.spectatorSessionId === null ? [] : [stream.spectatorSessionId],
    );
    if (spectatorSessions.length > 0) {
      // A revocation whose event the bus lost still ends its streams here; so does a spectator
      // credential ended by "Stop watching" (on any instance) or by the link's spectator cap.
      // One query for the links, one for the (at most this instance's streams') credentials.
      const [links, live] = await Promise.all([
        roomStore.spectators.listLinkIds(code),
        roomStore.spectators.liveSessionIds(code, [...new Set(spectatorSessions)], now),
      ]);
      const liveLinks = new Set(links);
      const liveSessions = new Set(live);
      for (const stream of list) {
        if (stream.spectatorLinkId === null || stream.spectatorSessionId === null) continue;
        if (!liveLinks.has(stream.spectatorLinkId)) end(stream, undefined, 'link_revoked');
        else if (!liveSessions.has(stream.spectatorSessionId)) end(stream, undefined, 'watch_ended');
      }
    }
    if (!list.some((stream) => stream.playerId !== null)) return;
    const present = new Map(
      (await roomStore.listPresentPlayers(code)).map((player) => [player.id, player.seatGeneration]),
    );
    for (const stream of list) {
      if (stream.playerId === null) continue;
      const generation = present.get(stream.playerId);
      if (generation === undefined) end(stream, 'no longer in the room');
      // The seat was claimed on another device: this one's credential is spent.
      else if (generation > stream.seatGeneration) end(stream, undefined, 'seat_replaced');
    }
  };

  // The bus lost its pub/sub connection and is back: events published meanwhile never reached
  // this instance, so the heartbeat's check runs now rather than at the next beat: one read per
  // room, one room at a time, and a log read only for the streams whose room moved past them. It
  // was a log read per stream, all at once: up to MAX_STREAMS_TOTAL reads (two each for a stream
  // already up to date) queued on the pool on every reconnect, holding up sign-ins, and a read
  // that timed out ended its stream, so the clients all reconnected together (red-team finding).
  const stopResync = roomBus.onResync(() => void reconcile(true));

  // On the core's scheduler (unref'd Node timers in production), so a test clock drives it.
  const heartbeat = gatehouse.scheduler.setInterval(() => {
    for (const stream of streams) if (stream.pending === undefined) write(stream, ': heartbeat\n\n');
    void reconcile();
  }, heartbeatMs);

  // Open streams would keep `server.close()` waiting forever; end them first. Clients reconnect
  // (to another instance, behind a load balancer) and resume with Last-Event-ID.
  app.addHook('preClose', async () => {
    closing = true;
    for (const stream of streams) end(stream, 'server shutting down');
  });
  app.addHook('onClose', async () => {
    heartbeat.cancel();
    stopResync();
    // A pass under way reads the database the core is about to close: let it finish (its rooms'
    // streams are all ended, so it reads no further room). So do session re-checks under way.
    await reconcilePass;
    await Promise.all(rechecks);
  });

  app.get(
    '/rooms/:code/events',
    {
      // Counted by the server's metrics as an open stream (gatehouse_event_streams_open).
      config: { eventStream: true },
      preValidation: guards.viewer,
      schema: {
        tags: ['rooms'],
        summary: 'Follow a room (Server-Sent Events)',
        description: `\`text/event-stream\` of the room's events, for its players, its host and its spectators (the watch
cookie of \`POST /rooms/{code}/watch\`; they get what other players get, secret rolls as placeholders):

- \`player_joined\` \`{ id, player: { id, name }, at }\`
- \`player_left\` \`{ id, player: { id, name }, reason: "left" | "kicked" | "expired", at }\` (\`kicked\`: the host
  removed them; \`expired\`: their seat went unused for \`ROOM_SEAT_TTL\`)
- \`roll\` \`{ id, player, notation, label, terms, modifier, total, rolled_at, at }\`
- \`room_closed\` \`{ id, at }\`
- \`presence\` \`{ player_id, online }\` (only with \`?presence=true\`; no \`id:\`, not in the log): a player (\`player_id\`) or the host
  (\`player_id: null\`) opened their first or closed their last stream on any instance; \`GET /rooms/{code}\`'s
  \`online\` is the state to start from. An instance that stops answering has its streams counted offline after
  three heartbeats. Coalesced per room over 500 ms: the first change of a quiet room comes at once, later ones in
  the window come together at its end as the net change (someone who came and went inside it is not announced),
  always ending with the latest state; treat a message as "is now online/offline", not as a count of streams.
- \`room_updated\` \`{ id, name, locked, at }\` (the host renamed or (un)locked the room)
- \`host_changed\` \`{ id, at }\` (another account took the room over; host streams end after it)
- \`spectator_link_created\` / \`spectator_link_revoked\` \`{ id, link_id, at }\` (the host made or revoked a watch link;
  the streams of a revoked link end after its event with \`stream_end\` \`link_revoked\`)
- \`spectators\` \`{ count }\` (only with \`?presence=true\`; no \`id:\`): how many streams watch through watch links now
  (coalesced as \`presence\` is: at most one per 500 ms, the latest count last).
  Spectators never appear in \`presence\` or as players
- \`resync\` \`{ last_event_id }\` (with \`id:\` \`last_event_id\`, not in the log): the first message of a stream resumed from
  more than \`ROOM_MAX_REPLAY_EVENTS\` events (or more than \`ROOM_MAX_REPLAY_BYTES\` of them) behind the room's newest. Those events are not replayed: what you show is
  stale, so re-read the room (\`GET /rooms/{code}\`) and replace your view with it. Live events follow from
  \`last_event_id + 1\`, and your next reconnect resumes from \`last_event_id\`
- \`stream_end\` \`{ reason: "token_expired" | "token_revoked" | "session_ended" | "session_revoked" | "seat_replaced" | "link_revoked" | "watch_ended" }\` (no \`id:\`), the last message when
  the credential that opened the stream ends it (\`watch_ended\`: a spectator stopped watching, or the link's
  \`MAX_SPECTATORS_PER_WATCH_LINK\` ended this oldest spectator; seen within a heartbeat): the room token or the host's access token expired
  (\`token_expired\`; a browser renews it from its seat with \`POST /rooms/{code}/seat\`, then reconnects), the
  operator's \`gatehouse revoke-all\` refused every room token issued before it (\`token_revoked\`; renew from the
  seat the same way), the seat
  was claimed on another device (\`seat_replaced\`), the host's cookie session reached its absolute or idle
  expiry (\`session_ended\`), or the host's session was revoked, e.g. by logout (\`session_revoked\`). Do not
  reconnect with the same credential.

Every message has an \`id:\`: the event's sequence number **within this room** (1, 2, 3… with no gap; ids of different
rooms are unrelated and say nothing about each other). A stream sends every number after the one it starts from
exactly once, in order. To resume, send \`Last-Event-ID\` (EventSource does on reconnect) or \`?last_event_id=\` (e.g.
the \`last_event_id\` of \`GET /rooms/{code}\`): the stored events of this room after it come first, then live ones.
At most \`ROOM_MAX_REPLAY_EVENTS\` (and \`ROOM_MAX_REPLAY_BYTES\` of them) are replayed: from further behind, one \`resync\` comes instead (see above). Without
either, the stream starts after the room's newest event; an id beyond the newest (e.g. a global id from before ids
were per room) counts as the newest. \`: heartbeat\` comments keep the connection alive.

The server ends the stream when the room closes, when you leave or are removed (after sending that \`player_left\`),
and with its credential (after \`stream_end\`, within one heartbeat interval at most). Open streams are capped per
server instance: \`MAX_STREAMS_PER_PLAYER\` per player, \`MAX_STREAMS_PER_ACCOUNT\` per host account across all of its
rooms, \`MAX_STREAMS_PER_IP\` per client address (IPv6: per /64, and four times that per /48) across all rooms;
beyond a cap, 429 \`TOO_MANY_STREAMS\` with \`Retry-After\`. A spectator counts on \`MAX_STREAMS_PER_PLAYER\` on their
own and, with the other spectators of the same watch link, on \`MAX_SPECTATOR_STREAMS_PER_LINK\`; when that is full, a
spectator from a client network (IPv4 address, IPv6 /48) holding at least two fewer of the link's streams than the
network holding the most ends that network's oldest stream (which gets a \`: displaced\` comment, no \`stream_end\`; at
most one per network and link every 5 s). Beyond
\`MAX_STREAMS_TOTAL\` streams on the instance, 503 \`SERVICE_UNAVAILABLE\` with \`Retry-After\`. Opening is also rate
limited: \`ROOM_STREAM_OPENS_PER_MINUTE\` per player, spectator or host account and
\`ROOM_STREAM_OPENS_PER_MINUTE_PER_IP\` per client address, beyond which 429 \`TOO_MANY_REQUESTS\` with \`Retry-After\`
(reconnect no faster than the \`retry:\` the stream sends).

Swagger UI waits for the response to end before showing it; use \`curl -N\` or EventSource to watch it live.`,
        params: Type.Object({ code: RoomCodeParam }),
        querystring: Type.Object({
          last_event_id: Type.Optional(
            Type.String({ maxLength: 20, description: 'Resume after this event id (per room)' }),
          ),
          presence: Type.Optional(
            Type.Boolean({ default: false, description: 'Also send `presence` messages (no `id:`)' }),
          ),
        }),
        headers: Type.Object({
          'last-event-id': Type.Optional(
            Type.String({ maxLength: 20, description: 'Resume after this event id (per room)' }),
          ),
        }),
        security: VIEWER_SECURITY,
        response: {
          200: {
            description: 'The event stream',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          ...errorResponses,
          404: problemRef,
          429: problemRef,
          503: problemRef,
        },
      },
    },
    async (request, reply) => {
      const caller = roomOf(request);
      const { code } = caller;
      const lastEventId = lastEventIdOf(request);
      // RFC 9110 §9.3.2: HEAD gets GET's header fields and no stream, before any limit, slot or
      // presence: a HEAD holds nothing (standards audit 2026-12-05: Node flushed no headers for a
      // HEAD whose body was being written, so it hung, holding a stream slot and showing the
      // player online).
      if (request.method === 'HEAD') {
        reply.hijack();
        writeStreamHead(reply);
        reply.raw.end();
        return;
      }
      const spectator = caller.spectator ?? null;
      const address = addressBucket(request.ip);
      const network = addressBucket(request.ip, 48);
      // Opens are rate limited (red-team G8): every open and close is announced to the room's
      // presence streams, so a reconnect loop must not be free. Per client address and per player,
      // spectator (one exchange of a watch link, never the whole link's audience) or host account;
      // the address first, so a refused client adds nothing to the principal's count. Before the
      // caps below: they are checked and counted with no await in between.
      const opened = 'Too many event streams opened; wait before reconnecting.';
      // Per IPv6 /48 too (four addresses' worth): each open may replay up to
      // ROOM_MAX_REPLAY_EVENTS events, so per /64 alone one network read the log 65 536 times
      // faster than the limit says (review of red-team 2026-12g D1).
      await enforceAddressRateLimit(
        counters,
        {
          prefix: 'room-stream-open',
          max: settings.roomStreamOpensPerMinutePerIp,
          windowMs: MINUTE_MS,
          message: opened,
        },
        request.ip,
        clock,
      );
      const principal =
        caller.player !== null
          ? `player:${caller.player.id}`
          : spectator !== null
            ? `spectator:${spectator.sessionId}`
            : `account:${caller.host?.userId}`;
      await enforceRateLimit(
        counters,
        {
          key: `room-stream-open:${principal}`,
          max: settings.roomStreamOpensPerMinute,
          windowMs: MINUTE_MS,
          message: opened,
        },
        clock,
      );
      // The whole instance's share (red-team G4): per-client caps alone let many addresses (an
      // IPv6 /56, a few free accounts) hold thousands of streams, ≈ 45 KB each, each written on
      // every roll of its room. A capacity limit, not the caller's fault: 503, retry later.
      if (streams.size >= settings.maxStreamsTotal) {
        throw new GatehouseError(
          'SERVICE_UNAVAILABLE',
          'This server has as many event streams open as it may; try again later.',
          { retryAfterSeconds: 30 },
        );
      }
      // Concurrent streams are capped per player, per host account across all of its rooms, and per
      // client address (IPv4 address, IPv6 /64, and IPv6 /48) across all rooms: more rooms or more
      // players must not multiply what one client can hold open (issue 8). All checked before any
      // is counted (tryAcquire), so a refusal costs no state. A spectator has a player's cap of their own, and
      // the link's audience one together, so a spectator opening many tabs never takes every
      // stream of the link.
      const callerCaps =
        caller.player !== null
          ? [{ key: `player:${caller.player.id}`, max: settings.maxStreamsPerPlayer, per: 'player' }]
          : spectator !== null
            ? [
                {
                  key: `spectator:${spectator.sessionId}`,
                  max: settings.maxStreamsPerPlayer,
                  per: 'spectator',
                },
                {
                  key: `watch:${spectator.linkId}`,
                  max: settings.maxSpectatorStreamsPerLink,
                  per: 'watch link',
                },
              ]
            : [{ key: `account:${caller.host?.userId}`, max: settings.maxStreamsPerAccount, per: 'account' }];
      const caps = [
        ...callerCaps,
        { key: `ip:${address}`, max: settings.maxStreamsPerIp, per: 'client address' },
        // An IPv4 address is its own /48 bucket: counted once.
        ...(network === address
          ? []
          : [
              {
                key: `net:${network}`,
                max: settings.maxStreamsPerIp * STREAMS_PER_NETWORK_FACTOR,
                per: 'client network (IPv6 /48)',
              },
            ]),
      ];
      let slot = streamSlots.tryAcquire(caps);
      if (!slot.ok && spectator !== null && slot.cap.key === `watch:${spectator.linkId}`) {
        if (displaceFromLink(spectator.linkId, network, caps)) slot = streamSlots.tryAcquire(caps);
      }
      if (!slot.ok) {
        throw new GatehouseError<DiceryErrorCode>(
          'TOO_MANY_STREAMS',
          `At most ${slot.cap.max} event streams per ${slot.cap.per} at once.`,
          { retryAfterSeconds: 5 },
        );
      }
      const stream: Stream = {
        code,
        playerId: caller.player?.id ?? null,
        host: caller.player === null && caller.host !== null,
        seatGeneration: caller.player?.seatGeneration ?? 0,
        spectatorLinkId: spectator?.linkId ?? null,
        spectatorSessionId: spectator?.sessionId ?? null,
        hostSessionId: caller.player === null ? (caller.host?.sessionId ?? null) : null,
        hostUserId: caller.player === null && caller.host !== null ? caller.host.userId : null,
        network,
        releaseSlot: slot.release,
        tokenIssuedAt: caller.player?.tokenIssuedAt ?? null,
        // The cut-off known when the guard checked the host's credential, not now: one learned
        // while this request was set up (the room read, the open limits) must still re-check it.
        cutoffSeen: caller.host?.cutoffSeen ?? gatehouse.sessions.revocationCutoff(),
        credential:
          caller.player !== null
            ? 'room_token'
            : spectator !== null
              ? 'watch_link'
              : caller.host?.transport === 'cookie'
                ? 'cookie_session'
                : 'access_token',
        // A watch link has no expiry of its own: it lasts until the host revokes it or closes the room.
        expiresAt:
          caller.player?.tokenExpiresAt ??
          (spectator !== null ? Number.MAX_SAFE_INTEGER : (caller.host?.expiresAt ?? 0)),
        renewing: false,
        raw: undefined,
        // Set from the room once it has been read, below.
        lastId: 0,
        pending: [],
        closed: false,
        unsubscribe: () => {},
        presenceOff: () => {},
        expiry: undefined,
        resume: undefined,
      };
      streams.add(stream);
      // Registered first: the client may go away while the log is read, before the hijack.
      reply.raw.once('close', () => end(stream));
      // Set when the client is too far behind to replay (see the TSDoc above).
      let sendResync = false;
      // Subscribe before reading the room, so nothing published meanwhile is missed: it waits in
      // `pending` and what both the log and the bus deliver is written once (by sequence number).
      stream.unsubscribe = roomBus.subscribe(code, (event) => receive(stream, event));

      try {
        // Checked again now that the subscription is live: a kick or close between the guard and
        // the subscription would otherwise go unnoticed until the next reconciliation.
        if (stream.playerId !== null) {
          const standing = await rooms.standing(code, stream.playerId, stream.seatGeneration);
          if (standing !== 'present') {
            await rooms.getRoom(code);
            throw standingError(standing);
          }
        }
        if (stream.spectatorSessionId !== null) {
          const live = await roomStore.spectators.liveSessionIds(code, [stream.spectatorSessionId], clock());
          if (live.length === 0) {
            await rooms.getRoom(code);
            throw spectatorLinkInvalid();
          }
        }
        // Events 1..lastEventSeq are committed once this is read.
        const { lastEventSeq, hostUserId } = await rooms.getRoom(code);
        // A hand-over that committed after the guard: its `host_changed` is at or before
        // `lastEventSeq`, so this stream would never see it, and would show the new host's secret
        // rolls to the old one. Refused as the guard now would: the room is not theirs.
        if (stream.hostUserId !== null && stream.hostUserId !== hostUserId) throw roomNotFound();
        let start = replayStart(lastEventId, lastEventSeq, settings.roomMaxReplayEvents);
        // By size too: a thousand of the largest rolls are ≈ 11 MB to read, parse and send.
        if (
          start.after < lastEventSeq &&
          (await roomStore.eventBytes(code, start.after, lastEventSeq)) > settings.roomMaxReplayBytes
        ) {
          start = { after: lastEventSeq, resync: true };
        }
        stream.lastId = start.after;
        sendResync = start.resync;
      } catch (error) {
        end(stream);
        throw error;
      }

      reply.hijack();
      const raw = reply.raw;
      if (stream.closed || raw.socket === null || raw.socket.destroyed) {
        // The client left while the log was read: nobody to write to.
        end(stream);
        raw.destroy();
        return;
      }
      stream.raw = raw;
      raw.on('error', () => end(stream));
      // A server's send timeout (`gatehouse serve`: socket inactivity, red-team G5) destroys a
      // socket that takes no byte for that long. A stream writes a heartbeat every interval, so a
      // reading client keeps it alive; a heartbeat slower than the timeout gets two intervals. A
      // client that stopped reading takes nothing and is still ended (or sooner by `maxBufferedBytes`).
      const socketTimeout = raw.socket.timeout ?? 0;
      if (socketTimeout > 0 && socketTimeout < 2 * heartbeatMs) raw.socket.setTimeout(2 * heartbeatMs);
      writeStreamHead(reply);
      raw.write(`retry: ${retryMs}\n\n`);
      // Before any event: `pending` holds what the bus delivered meanwhile (all after `lastId`),
      // and the catch-up below writes it after this, in order.
      if (sendResync) raw.write(resyncFrame(stream.lastId));

      // Online from now until the stream ends (issue 14). Presence frames carry no `id:`: they are
      // not in the log, so they never move the client's Last-Event-ID.
      // Opt-in (`?presence=true`): clients written before presence existed expect every message to
      // carry an id.
      const stopPresence = wantsPresence(request)
        ? presence.subscribe(code, (change) =>
            write(
              stream,
              'spectators' in change
                ? spectatorsFrame(change.spectators)
                : presenceFrame(change.playerId, change.online),
            ),
          )
        : () => {};
      // A spectator is counted as one, never as a player nor as the host.
      const disconnect =
        stream.spectatorLinkId !== null
          ? presence.connectSpectator(code)
          : presence.connect(code, stream.playerId);
      stream.presenceOff = () => {
        stopPresence();
        disconnect();
      };

      // The replay after Last-Event-ID, then whatever the bus delivered meanwhile, in order.
      await catchUp(stream);

      if (!stream.closed) arm(stream);
    },
  );
}

/** Writes an event stream's status line and headers on a hijacked reply. */
function writeStreamHead(reply: FastifyReply): void {
  const raw = reply.raw;
  // Hijacked replies skip onSend hooks; keep the headers hooks already set (helmet, CORS).
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) raw.setHeader(name, value);
  }
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    // Tells nginx not to buffer the stream (it would hold events back).
    'x-accel-buffering': 'no',
  });
}
