/**
 * The one door from the web UI into the server's sources: Dicery's wire types and the rules the
 * browser applies before asking the server (room codes, dice notation, length limits, display
 * text). esbuild bundles the rule modules; the wire module is imported for its types only, so no
 * TypeBox code reaches the bundle. Every module named here must stay browser-safe (no `node:`
 * import; `npm run build` fails otherwise). When the server's folders move, only this file changes.
 *
 * @module
 */

export { ROLES, type Role, roleAtLeast } from '../../src/accounts/roles.js';
export {
  COLORS,
  type Color,
  SIZES,
  type Size,
} from '../../src/apps/clothes/core/clothing-attributes.js';
export { DICE_LIMITS, parseNotation } from '../../src/apps/dicery/shared/dice-notation.js';
export {
  PLAYER_NAME_MAX_LENGTH,
  ROLL_LABEL_MAX_LENGTH,
  ROOM_NAME_MAX_LENGTH,
} from '../../src/apps/dicery/shared/limits.js';
export {
  normalizeRoomCode,
  ROOM_CODE_ALPHABET,
  ROOM_CODE_LENGTH,
} from '../../src/apps/dicery/shared/room-code.js';
export {
  ROOM_LOG_FORMAT,
  type RoomLogDocument,
  type RoomLogKey,
  type RoomLogProblem,
  type RoomLogVerdict,
  verifyRoomLog,
} from '../../src/apps/dicery/shared/room-log.js';
export type {
  ConstantTermData,
  DiceTermData,
  HostedRoom,
  JoinResult,
  KeepRuleData,
  Player as WirePlayer,
  PlayerLeftReason,
  PlayerRef,
  PresenceEventData,
  Roll as WireRoll,
  RolledDie,
  RollTermData,
  Room,
  RoomEventDataMap,
  RoomSnapshot as WireRoomSnapshot,
  SpectatorLink,
  SpectatorLinkCreated,
  StreamEndReason,
} from '../../src/apps/dicery/shared/wire.js';
export { countCodePoints, normalizeDisplayText } from '../../src/text/display-text.js';
