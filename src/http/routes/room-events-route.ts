import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { GatehouseError } from '../../errors.js';
import type { Gatehouse } from '../../gatehouse.js';
import type { RoomEvent } from '../../rooms/room-bus.js';
import { ROOM_EVENTS_MAX_PAGE } from '../../rooms/room-service.js';
import { MEMBER_SECURITY, type RoomGuards, roomOf } from '../room-auth.js';
import { errorResponses, problemRef, RoomCodeParam } from '../schemas.js';
import { toEventPayload } from './room-views.js';

/** Options of the room event stream route. */
export interface RoomEventsRouteOptions {
  /**
   * Milliseconds between `: heartbeat` comments, and between re-checks of open streams against the
   * database (see {@link registerRoomEventsRoute}).
   * @default config.roomHeartbeatInterval × 1000 (15 000)
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
  /** The host's account session, or null for a player. */
  hostSessionId: string | null;
  /** What the per-caller stream cap counts this stream under. */
  capKey: string;
  raw: ServerResponse | undefined;
  /** Id of the newest event written; older or equal ids are skipped (replay and live overlap). */
  lastId: number;
  /** Events received from the bus while the replay is being written. */
  pending: RoomEvent[] | undefined;
  closed: boolean;
  unsubscribe: () => void;
  expiry: NodeJS.Timeout | undefined;
}

const LAST_EVENT_ID = /^\d{1,15}$/;

/** Maps live events to their SSE frame: built once per event, written to every subscriber. */
const frames = new WeakMap<RoomEvent, string>();

function frameOf(event: RoomEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    // JSON.stringify escapes CR and LF, so the data is always one line (WHATWG HTML §9.2.6).
    frame = `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(toEventPayload(event))}\n\n`;
    frames.set(event, frame);
  }
  return frame;
}

function badLastEventId(): GatehouseError {
  const message = 'must be a non-negative integer (an event id)';
  return new GatehouseError('VALIDATION_FAILED', `Last-Event-ID ${message}`, {
    errors: [{ field: 'last_event_id', message }],
  });
}

/** `Last-Event-ID` (sent by EventSource on reconnect) or `?last_event_id=` (for a first connect). */
function lastEventIdOf(request: FastifyRequest): number | undefined {
  const header = request.headers['last-event-id'];
  const query = (request.query as { last_event_id?: string }).last_event_id;
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
 * A stream ends on `room_closed`, on `player_left` for its own player (after writing the event),
 * when its room token expires, when the client goes away, and when the server closes. Because
 * Redis pub/sub may drop a message, and a kick could land between the guard's check and the
 * subscription, every heartbeat also re-checks open streams against the database: one query
 * per room with streams on this instance (not one per stream), ending streams whose room closed
 * or whose player is gone, and host streams whose account session was revoked.
 *
 * The per-caller cap (`maxStreamsPerPlayer`) is counted per instance.
 */
export function registerRoomEventsRoute(
  app: FastifyInstance,
  gatehouse: Gatehouse,
  guards: RoomGuards,
  options: RoomEventsRouteOptions = {},
): void {
  const { rooms, roomStore, roomBus, revocations, config, clock } = gatehouse;
  const heartbeatMs = options.heartbeatIntervalMs ?? config.roomHeartbeatInterval * 1000;
  const retryMs = options.retryMs ?? 3000;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  if (!Number.isFinite(heartbeatMs) || heartbeatMs < 10) {
    throw new Error(
      `room events: the heartbeat interval must be at least 10 ms, got ${heartbeatMs} ms ` +
        '(set ROOM_HEARTBEAT_INTERVAL, or the heartbeatIntervalMs option, to a sane value such as 15s)',
    );
  }

  const streams = new Set<Stream>();
  const openPerCaller = new Map<string, number>();

  const end = (stream: Stream, comment?: string) => {
    if (stream.closed) return;
    stream.closed = true;
    stream.unsubscribe();
    clearTimeout(stream.expiry);
    streams.delete(stream);
    const left = (openPerCaller.get(stream.capKey) ?? 1) - 1;
    if (left > 0) openPerCaller.set(stream.capKey, left);
    else openPerCaller.delete(stream.capKey);
    if (stream.raw !== undefined && !stream.raw.writableEnded) {
      stream.raw.end(comment === undefined ? undefined : `: ${comment}\n\n`);
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

  const deliver = (stream: Stream, event: RoomEvent) => {
    if (stream.closed || event.id <= stream.lastId) return;
    stream.lastId = event.id;
    write(stream, frameOf(event));
    if (event.type === 'room_closed') end(stream);
    else if (event.type === 'player_left' && event.data.player.id === stream.playerId) end(stream);
  };

  /** Ends streams the database says must not be open any more (see the TSDoc above). */
  let reconciling = false;
  const reconcile = async () => {
    if (reconciling || streams.size === 0) return;
    reconciling = true;
    try {
      const byRoom = new Map<string, Stream[]>();
      for (const stream of streams) {
        if (stream.hostSessionId !== null && revocations.isRevoked(stream.hostSessionId)) {
          end(stream, 'session ended');
          continue;
        }
        const list = byRoom.get(stream.code);
        if (list === undefined) byRoom.set(stream.code, [stream]);
        else list.push(stream);
      }
      // Only streams listed before the query are judged by it: a player who joins and connects
      // while it runs must not be mistaken for a departed one.
      for (const [code, list] of byRoom) {
        const room = await roomStore.findRoom(code);
        if (room === undefined || room.state !== 'open') {
          for (const stream of list) end(stream, 'room closed');
          continue;
        }
        if (!list.some((stream) => stream.playerId !== null)) continue;
        const present = new Set((await roomStore.listPresentPlayers(code)).map((player) => player.id));
        for (const stream of list) {
          if (stream.playerId !== null && !present.has(stream.playerId)) end(stream, 'no longer in the room');
        }
      }
    } catch (error) {
      app.log.warn({ err: error }, 'room stream reconciliation failed');
    } finally {
      reconciling = false;
    }
  };

  const heartbeat = setInterval(() => {
    for (const stream of streams) if (stream.pending === undefined) write(stream, ': heartbeat\n\n');
    void reconcile();
  }, heartbeatMs);
  heartbeat.unref();

  // Open streams would keep `server.close()` waiting forever; end them first. Clients reconnect
  // (to another instance, behind a load balancer) and resume with Last-Event-ID.
  app.addHook('preClose', async () => {
    for (const stream of streams) end(stream, 'server shutting down');
  });
  app.addHook('onClose', async () => clearInterval(heartbeat));

  app.get(
    '/rooms/:code/events',
    {
      preValidation: guards.member,
      schema: {
        tags: ['rooms'],
        summary: 'Follow a room (Server-Sent Events)',
        description: `\`text/event-stream\` of the room's events, for its players and its host:

- \`player_joined\` \`{ id, player: { id, name }, at }\`
- \`player_left\` \`{ id, player: { id, name }, reason: "left" | "kicked", at }\`
- \`roll\` \`{ id, player, notation, label, terms, modifier, total, rolled_at, at }\`
- \`room_closed\` \`{ id, at }\`

Every message has an \`id:\` (the event's id in the room log). To resume, send \`Last-Event-ID\` (EventSource does on
reconnect) or \`?last_event_id=\` (e.g. the \`last_event_id\` of \`GET /rooms/{code}\`): the stored events of this room
after it come first, then live ones. \`: heartbeat\` comments keep the connection alive.

The server ends the stream when the room closes, when you leave or are removed (after sending that \`player_left\`),
and when your room token expires. At most \`MAX_STREAMS_PER_PLAYER\` streams per player at once (429 beyond).

Swagger UI waits for the response to end before showing it; use \`curl -N\` or EventSource to watch it live.`,
        params: Type.Object({ code: RoomCodeParam }),
        querystring: Type.Object({
          last_event_id: Type.Optional(
            Type.String({ maxLength: 20, description: 'Resume after this event id' }),
          ),
        }),
        headers: Type.Object({
          'last-event-id': Type.Optional(
            Type.String({ maxLength: 20, description: 'Resume after this event id' }),
          ),
        }),
        security: MEMBER_SECURITY,
        response: {
          200: {
            description: 'The event stream',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          ...errorResponses,
          404: problemRef,
          429: problemRef,
        },
      },
    },
    async (request, reply) => {
      const caller = roomOf(request);
      const { code } = caller;
      const lastEventId = lastEventIdOf(request);
      const capKey =
        caller.player !== null ? `player:${caller.player.id}` : `host:${caller.host?.userId}:${code}`;
      const open = openPerCaller.get(capKey) ?? 0;
      if (open >= config.maxStreamsPerPlayer) {
        throw new GatehouseError(
          'TOO_MANY_STREAMS',
          `At most ${config.maxStreamsPerPlayer} streams per player at once.`,
          {
            headers: { 'retry-after': '5' },
          },
        );
      }
      openPerCaller.set(capKey, open + 1);
      const stream: Stream = {
        code,
        playerId: caller.player?.id ?? null,
        hostSessionId: caller.player === null ? (caller.host?.sessionId ?? null) : null,
        capKey,
        raw: undefined,
        lastId: lastEventId ?? 0,
        pending: [],
        closed: false,
        unsubscribe: () => {},
        expiry: undefined,
      };
      streams.add(stream);
      // Registered first: the client may go away while the log is read, before the hijack.
      reply.raw.once('close', () => end(stream));
      // Subscribe before reading the log, so nothing published meanwhile is missed; what both
      // deliver is written once (ids only grow).
      stream.unsubscribe = roomBus.subscribe(code, (event) => {
        if (stream.pending !== undefined) stream.pending.push(event);
        else deliver(stream, event);
      });

      let replay: RoomEvent[] = [];
      try {
        // Checked again now that the subscription is live: a kick or close between the guard and
        // the subscription would otherwise go unnoticed until the next reconciliation.
        if (stream.playerId !== null && !(await rooms.isPresent(code, stream.playerId))) {
          await rooms.getRoom(code);
          throw new GatehouseError('NOT_ROOM_MEMBER', 'You are no longer in this room.');
        }
        if (lastEventId !== undefined) replay = await rooms.eventsAfter(code, lastEventId);
        else await rooms.getRoom(code);
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
      raw.write(`retry: ${retryMs}\n\n`);

      try {
        for (;;) {
          for (const event of replay) deliver(stream, event);
          if (replay.length < ROOM_EVENTS_MAX_PAGE || stream.closed) break;
          replay = await rooms.eventsAfter(code, stream.lastId);
        }
      } catch (error) {
        request.log.warn({ err: error }, 'room event replay failed');
        end(stream);
        return;
      }
      const pending = stream.pending ?? [];
      stream.pending = undefined;
      for (const event of pending) deliver(stream, event);

      if (caller.player !== null && !stream.closed) {
        stream.expiry = setTimeout(
          () => end(stream, 'room token expired'),
          Math.max(0, caller.player.tokenExpiresAt - clock()),
        );
      }
    },
  );
}
