import { type ErrorCode, GatehouseError } from '../../../index.js';

/** Dicery's own stable error codes (statuses: `DICERY_ERROR_STATUSES`, registered by the plugin). */
export type DiceryErrorCode =
  | 'ROOM_NOT_FOUND'
  | 'PLAYER_NOT_FOUND'
  | 'NOT_ROOM_MEMBER'
  | 'PLAYER_NAME_TAKEN'
  | 'TOO_MANY_OPEN_ROOMS'
  | 'ROOM_FULL'
  | 'INVALID_DICE_NOTATION'
  | 'TOO_MANY_STREAMS';

/** An error Dicery raises: one of its codes, or a core code (`VALIDATION_FAILED`, `FORBIDDEN`…). */
export type DiceryError = GatehouseError<DiceryErrorCode | ErrorCode>;

/**
 * "Room not found": one answer for a room that never existed, was closed, or that the caller may
 * not know about, so the answer never tells them apart.
 */
export function roomNotFound(): DiceryError {
  return new GatehouseError<DiceryErrorCode>('ROOM_NOT_FOUND', 'Room not found');
}
