/**
 * The room actions of the pages outside a lobby: create a room, join one, take a seat over with
 * a claim code. They hold no state (the answers set cookies the browser keeps); components take a
 * narrow `Pick` of {@link RoomActions} so their tests pass fakes.
 */
import { type ApiResult, api } from './api.js';
import type { JoinResult, Room } from './types.js';

/** Room calls made by the home, create-room and join components. */
export interface RoomActions {
  /** `POST /rooms`: opens a room hosted by the signed-in user. */
  createRoom(name: string): Promise<ApiResult<Room>>;
  /** `POST /rooms/{code}/join`: joins as `player`; the answer's cookies make this browser that player. */
  joinRoom(code: string, player: string): Promise<ApiResult<JoinResult>>;
  /** `POST /rooms/{code}/claim`: moves a seat to this browser. */
  claimSeat(code: string, claimCode: string): Promise<ApiResult<JoinResult>>;
}

const roomPath = (code: string, suffix: string) => `/rooms/${encodeURIComponent(code)}${suffix}`;

/** The room actions over the API. */
export const roomActions: RoomActions = {
  createRoom: (name) => api<Room>('POST', '/rooms', { name }),
  joinRoom: (code, player) => api<JoinResult>('POST', roomPath(code, '/join'), { player }),
  claimSeat: (code, claimCode) =>
    api<JoinResult>('POST', roomPath(code, '/claim'), { claim_code: claimCode }),
};
