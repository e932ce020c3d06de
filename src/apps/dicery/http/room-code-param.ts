import { Type } from 'typebox';
import { ROOM_CODE_INPUT_PATTERN, ROOM_CODE_LENGTH } from '../shared/room-code.js';

/**
 * A room code as typed in a URL: the room-code alphabet only (either case, surrounding spaces
 * ignored), so a malformed code never reaches a query.
 */
export const RoomCodeParam = Type.String({
  maxLength: 64,
  pattern: ROOM_CODE_INPUT_PATTERN,
  description: `The room code (${ROOM_CODE_LENGTH} characters; case and surrounding spaces are ignored)`,
});
