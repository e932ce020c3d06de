/**
 * Dicery rooms: codes, player names, the room service and the event bus (memory or Redis).
 * Framework-free; the HTTP layer maps its {@link GatehouseError}s and events to responses and SSE.
 *
 * @module
 */

export {
  generateRoomCode,
  normalizeRoomCode,
  ROOM_CODE_ALPHABET,
  ROOM_CODE_LENGTH,
} from '../shared/room-code.js';
export type {
  DisplayTextRejection,
  DisplayTextResult,
  PlayerNameRejection,
  PlayerNameResult,
} from './player-name.js';
export {
  normalizeDisplayText,
  normalizePlayerName,
  PLAYER_NAME_MAX_LENGTH,
  RESERVED_PLAYER_NAMES,
} from './player-name.js';
export type {
  MemoryRoomBusOptions,
  RollEventData,
  RolledDieData,
  RollTermData,
  RoomBus,
  RoomEvent,
  RoomEventDataMap,
  RoomEventHandler,
  RoomEventType,
  RoomPlayerRef,
} from './room-bus.js';
export { createMemoryRoomBus, ROOM_EVENT_TYPES } from './room-bus.js';
export type { RoomEventViewer } from './room-event-view.js';
export { viewRoomEvent } from './room-event-view.js';
export type { RoomService, RoomServiceOptions, RoomSnapshot, RoomTransaction } from './room-service.js';
export {
  createRoomService,
  ROLL_LABEL_MAX_LENGTH,
  ROOM_EVENTS_MAX_PAGE,
  ROOM_NAME_MAX_LENGTH,
} from './room-service.js';
export type {
  IssuedRoomToken,
  RoomTokenCheck,
  RoomTokenFailure,
  RoomTokenIdentity,
  RoomTokens,
  RoomTokensOptions,
} from './room-token.js';
export {
  createRoomTokens,
  looksLikeRoomToken,
  ROOM_CLAIM,
  ROOM_TOKEN_AUDIENCE,
  ROOM_TOKEN_MAX_TTL,
  ROOM_TOKEN_TYP,
} from './room-token.js';
export type { OpenRoomChannel } from './shared-room-bus.js';
export { createSharedRoomBus, ROOM_CHANNEL } from './shared-room-bus.js';
