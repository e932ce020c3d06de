/**
 * The room actions of the pages outside a lobby: create a room, join one, take a seat over with
 * a claim code. They hold no state (the answers set cookies the browser keeps); components take a
 * narrow `Pick` of {@link RoomActions} so their tests pass fakes.
 */
import { type ApiResult, api } from './api.js';
import type { Problem } from './problem.js';
import { asSnapshot } from './room-state.js';
import type { JoinResult, Room } from './types.js';

/**
 * What this browser holds in a room, as `findSeat` found out: a player it can continue as, no
 * seat (join normally), or a seat that ended (`problem.code` says how: `PLAYER_REMOVED`,
 * `SEAT_EXPIRED`, …).
 */
export type SeatLookup =
  | { kind: 'seated'; roomName: string; playerName: string }
  | { kind: 'none' }
  | { kind: 'ended'; problem: Problem };

/** Room calls made by the home, create-room and join components. */
export interface RoomActions {
  /** `POST /rooms`: opens a room hosted by the signed-in user. */
  createRoom(name: string): Promise<ApiResult<Room>>;
  /** `POST /rooms/{code}/join`: joins as `player`; the answer's cookies make this browser that player. */
  joinRoom(code: string, player: string): Promise<ApiResult<JoinResult>>;
  /** `POST /rooms/{code}/claim`: moves a seat to this browser. */
  claimSeat(code: string, claimCode: string): Promise<ApiResult<JoinResult>>;
  /**
   * Whether this browser already plays in room `code` ("Continue as Pat", issue 14). The seat
   * cookie is HttpOnly, so only the server can tell: the room token answers first
   * (`GET /rooms/{code}`), else the seat mints a fresh one (`POST /rooms/{code}/seat`, which counts
   * on the join limit like a join).
   */
  findSeat(code: string): Promise<SeatLookup>;
}

/** Codes of `POST /rooms/{code}/seat` for a seat this browser held that ended. */
const SEAT_ENDINGS: ReadonlySet<string> = new Set(['PLAYER_REMOVED', 'SEAT_EXPIRED', 'SEAT_REPLACED']);

const roomPath = (code: string, suffix: string) => `/rooms/${encodeURIComponent(code)}${suffix}`;

/** The room actions over the API. */
export const roomActions: RoomActions = {
  createRoom: (name) => api<Room>('POST', '/rooms', { name }),
  joinRoom: (code, player) => api<JoinResult>('POST', roomPath(code, '/join'), { player }),
  claimSeat: (code, claimCode) =>
    api<JoinResult>('POST', roomPath(code, '/claim'), { claim_code: claimCode }),
  async findSeat(code) {
    const room = await api<unknown>('GET', roomPath(code, ''));
    if (room.ok) {
      const snapshot = asSnapshot(room.data);
      const you = snapshot?.players.find((player) => player.id === snapshot.you.player_id);
      // A host who does not play (player_id null) has no seat: they may join as a player.
      return snapshot === undefined || you === undefined
        ? { kind: 'none' }
        : { kind: 'seated', roomName: snapshot.room.name, playerName: you.name };
    }
    if (room.problem.status !== 401) return { kind: 'none' };
    const seat = await api<JoinResult>('POST', roomPath(code, '/seat'));
    if (seat.ok) return { kind: 'seated', roomName: seat.data.room.name, playerName: seat.data.player.name };
    // A seat that ended says how; anything else (no seat, a room that is gone, a busy server) is
    // left to the join form, which reports what the join itself answers.
    return SEAT_ENDINGS.has(seat.problem.code) ? { kind: 'ended', problem: seat.problem } : { kind: 'none' };
  },
};
