/**
 * Following a room live over Server-Sent Events (`GET /rooms/{code}/events`). `EventSource` sends
 * the same-origin cookies (room cookie or session) and resumes after a dropped connection with
 * `Last-Event-ID` by itself (from too far behind, the server sends `resync` instead of the events
 * missed); this module parses the events and reports the connection state.
 */
import { asPlayer, asRoll } from './room-state.js';
import type { PlayerJoinedData, PlayerLeftData, PresenceEventData, Roll, StreamEndReason } from './types.js';

/** What the lobby hears from the stream. */
export interface RoomStreamHandlers {
  /** Connected (first time or after a reconnect). */
  onOpen(): void;
  onPlayerJoined(data: PlayerJoinedData): void;
  onPlayerLeft(data: PlayerLeftData): void;
  onRoll(roll: Roll): void;
  /**
   * The host revealed secret roll `rollId`; `roll` is it in full (issue 14). Optional, so a view
   * that never shows secret rolls need not handle it.
   */
  onRollRevealed?(rollId: number, roll: Roll): void;
  /** A player (`player_id`) or the host (`player_id: null`) came online or went offline. */
  onPresence?(data: PresenceEventData): void;
  /** How many spectators are watching now (sent on `?presence=true` streams when it changes). */
  onSpectators?(count: number): void;
  onRoomClosed(): void;
  /**
   * The stream resumed from further behind than the server replays (`ROOM_MAX_REPLAY_EVENTS`, or
   * `ROOM_MAX_REPLAY_BYTES` of large rolls, which a short drop in a busy room can pass): it
   * skipped the events in between and goes on live from the room's newest, so the view is stale
   * and must be rebuilt from a fresh read of the room.
   */
  onResync(): void;
  /**
   * The server ended the stream because the credential that opened it ended (room token or
   * session expired, session revoked). The stream is closed for good: reconnecting with the same
   * credential would only be refused, and that refusal must not read as a kick.
   */
  onStreamEnd(reason: StreamEndReason): void;
  /** Connection lost; the browser is retrying. */
  onReconnecting(): void;
  /**
   * The browser gave up: the server refused the stream (401/403/404, or not an event stream).
   * Only a fresh look at the room can tell why.
   */
  onRefused(): void;
}

/** An open stream. */
export interface RoomStream {
  /** Stops listening for good (no reconnects). Idempotent. */
  close(): void;
}

/**
 * The room's event stream, as {@link openRoomStream} opens it. `presence=true`: the server sends
 * `presence` messages only to clients that ask for them.
 */
export function roomEventsPath(code: string): string {
  return `/rooms/${encodeURIComponent(code)}/events?presence=true`;
}

/** Opens the room's event stream. */
export function openRoomStream(code: string, handlers: RoomStreamHandlers): RoomStream {
  const source = new EventSource(roomEventsPath(code));
  let closed = false;
  const close = () => {
    closed = true;
    source.close();
  };

  const listen = (type: string, handle: (data: Record<string, unknown>, event: MessageEvent) => void) => {
    source.addEventListener(type, (event) => {
      if (closed || !(event instanceof MessageEvent)) return;
      let data: unknown;
      try {
        data = typeof event.data === 'string' && event.data !== '' ? JSON.parse(event.data) : {};
      } catch {
        return; // A garbled event is dropped; the next snapshot or event puts things right.
      }
      if (typeof data === 'object' && data !== null && !Array.isArray(data))
        handle(data as Record<string, unknown>, event);
    });
  };

  source.addEventListener('open', () => {
    if (!closed) handlers.onOpen();
  });
  source.addEventListener('error', () => {
    if (closed) return;
    if (source.readyState === EventSource.CLOSED) handlers.onRefused();
    else handlers.onReconnecting();
  });
  listen('player_joined', (data) => {
    const player = asPlayer(data.player);
    if (player !== undefined) handlers.onPlayerJoined({ player });
  });
  listen('player_left', (data) => {
    const player = asPlayer(data.player);
    if (player !== undefined)
      handlers.onPlayerLeft({
        player,
        reason: data.reason === 'kicked' || data.reason === 'expired' ? data.reason : 'left',
      });
  });
  listen('roll', (data, event) => {
    const roll: Roll | undefined = asRoll(data);
    if (roll === undefined) return;
    // The SSE id identifies the event when the data does not carry one.
    handlers.onRoll(
      roll.id === undefined && event.lastEventId !== '' ? { ...roll, id: event.lastEventId } : roll,
    );
  });
  listen('roll_revealed', (data) => {
    const rollId = data.roll_id;
    const roll = asRoll(data.roll);
    if (typeof rollId === 'number' && Number.isSafeInteger(rollId) && roll !== undefined)
      handlers.onRollRevealed?.(rollId, roll);
  });
  listen('presence', (data) => {
    const playerId = data.player_id;
    if ((typeof playerId === 'string' || playerId === null) && typeof data.online === 'boolean')
      handlers.onPresence?.({ player_id: playerId, online: data.online });
  });
  listen('spectators', (data) => {
    const count = data.count;
    if (typeof count === 'number' && Number.isSafeInteger(count) && count >= 0)
      handlers.onSpectators?.(count);
  });
  listen('room_closed', () => handlers.onRoomClosed());
  // Not through `listen`: the event itself says the view is stale, whatever its data (the id it
  // carries is already the browser's Last-Event-ID), so a garbled body must not hide it.
  source.addEventListener('resync', () => {
    if (!closed) handlers.onResync();
  });
  listen('stream_end', (data) => {
    close();
    handlers.onStreamEnd(
      data.reason === 'token_expired' ||
        data.reason === 'token_revoked' ||
        data.reason === 'session_revoked' ||
        data.reason === 'seat_replaced' ||
        data.reason === 'link_revoked' ||
        data.reason === 'watch_ended'
        ? data.reason
        : 'session_ended',
    );
  });
  return { close };
}
