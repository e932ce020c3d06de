import type { ErrorStatuses } from '../../../http/index.js';
import type { DiceryErrorCode } from '../core/errors.js';

/** HTTP statuses of Dicery's codes, registered with the adapter by the plugin. */
export const DICERY_ERROR_STATUSES: ErrorStatuses<DiceryErrorCode> = {
  NOT_ROOM_MEMBER: 403,
  ROOM_NOT_FOUND: 404,
  PLAYER_NOT_FOUND: 404,
  PLAYER_NAME_TAKEN: 409,
  TOO_MANY_OPEN_ROOMS: 409,
  ROOM_FULL: 409,
  INVALID_DICE_NOTATION: 422,
  TOO_MANY_STREAMS: 429,
  ROOM_TOKEN_EXPIRED: 401,
  SEAT_INVALID: 401,
  SEAT_EXPIRED: 401,
  SEAT_REPLACED: 401,
  PLAYER_REMOVED: 403,
  CLAIM_CODE_INVALID: 400,
  PLAYER_BANNED: 403,
  ROOM_LOCKED: 403,
  TOO_MANY_BANS: 409,
  TRANSFER_CODE_INVALID: 400,
  BAN_NOT_FOUND: 404,
  ROLL_NOT_FOUND: 404,
  ROLL_ALREADY_REVEALED: 409,
};
