import { type ErrorCode, GatehouseError } from '../../../index.js';

/** Dicery's own stable error codes (statuses: `DICERY_ERROR_STATUSES`, registered by the plugin). */
export type DiceryErrorCode =
  | 'ROOM_NOT_FOUND'
  | 'PLAYER_NOT_FOUND'
  | 'NOT_ROOM_MEMBER'
  | 'PLAYER_NAME_TAKEN'
  | 'TOO_MANY_OPEN_ROOMS'
  | 'ROOM_FULL'
  | 'ROOM_EVENT_LIMIT'
  | 'TOO_MANY_PLAYERS_FROM_NETWORK'
  | 'INVALID_DICE_NOTATION'
  | 'TOO_MANY_STREAMS'
  | 'TOO_MANY_EXPORTS'
  | 'ROOM_TOKEN_EXPIRED'
  | 'SEAT_INVALID'
  | 'SEAT_EXPIRED'
  | 'SEAT_REPLACED'
  | 'PLAYER_REMOVED'
  | 'CLAIM_CODE_INVALID'
  | 'PLAYER_BANNED'
  | 'ROOM_LOCKED'
  | 'TOO_MANY_BANS'
  | 'TRANSFER_CODE_INVALID'
  | 'BAN_NOT_FOUND'
  | 'ROLL_NOT_FOUND'
  | 'ROLL_ALREADY_REVEALED'
  | 'SPECTATOR_LINK_INVALID'
  | 'SPECTATOR_LINK_NOT_FOUND'
  | 'TOO_MANY_SPECTATOR_LINKS'
  | 'SPECTATOR_READ_ONLY'
  | 'AMBIGUOUS_COOKIE';

/** An error Dicery raises: one of its codes, or a core code (`VALIDATION_FAILED`, `FORBIDDEN`…). */
export type DiceryError = GatehouseError<DiceryErrorCode | ErrorCode>;

/**
 * "Room not found": one answer for a room that never existed, was closed, or that the caller may
 * not know about, so the answer never tells them apart.
 */
export function roomNotFound(): DiceryError {
  return new GatehouseError<DiceryErrorCode>('ROOM_NOT_FOUND', 'Room not found');
}

/**
 * The request carries two different values for one of a room's cookies. The browser never sends
 * two (the server sets one per name and path); a second one was planted by a sibling subdomain
 * (`Domain=` the parent, a longer path so it is sent first, RFC 6265 §5.4), which must not pick
 * the player, seat or spectator (cookie tossing, red-team G2).
 */
export function ambiguousCookie(name: string): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'AMBIGUOUS_COOKIE',
    `The request carries more than one ${name} cookie, so none was used: another site under this domain ` +
      'may have planted one to pass you off as someone else. This answer asks your browser to drop every copy ' +
      'this server never sets, so trying again should work. If it keeps happening, that site keeps planting ' +
      "it: clear this site's cookies and join the room again (or take your seat back with a claim code).",
    { errors: [{ field: name, message: 'More than one cookie of this name' }] },
  );
}

/** The host removed this player (kick): never confused with an expired token or seat. */
export function playerRemoved(): DiceryError {
  return new GatehouseError<DiceryErrorCode>('PLAYER_REMOVED', 'The host removed you from this room.');
}

/** The seat is unknown here, or was given up by leaving: join again. */
export function seatInvalid(): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'SEAT_INVALID',
    'You have no seat in this room; join it first.',
    {
      challenge: { scheme: 'Bearer' },
    },
  );
}

/** The seat went unused for `ROOM_SEAT_TTL`: its player was removed from the room, so join again. */
export function seatExpired(): DiceryError {
  return new GatehouseError<DiceryErrorCode>('SEAT_EXPIRED', 'Your seat expired; join the room again.', {
    challenge: { scheme: 'Bearer' },
  });
}

/** The seat was claimed on another device (claim code): this device's tokens no longer count. */
export function seatReplaced(): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'SEAT_REPLACED',
    'Your seat was taken over on another device with a claim code.',
    { challenge: { scheme: 'Bearer', error: 'invalid_token' } },
  );
}

/** A claim code that is unknown, spent, expired or malformed: one answer for all. */
export function claimCodeInvalid(): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'CLAIM_CODE_INVALID',
    'This claim code is not valid: it may have been used or have expired. Ask for a new one.',
    { errors: [{ field: 'claim_code', message: 'Not a valid claim code' }] },
  );
}

/** The host banned this name (kick = ban) from the room; the host can lift it. */
export function playerBanned(): DiceryError {
  return new GatehouseError<DiceryErrorCode>('PLAYER_BANNED', 'The host removed this name from the room.', {
    errors: [{ field: 'player', message: 'This name is banned from this room' }],
  });
}

/** The host locked the room: nobody new may join (present players and their seats still may). */
export function roomLocked(): DiceryError {
  return new GatehouseError<DiceryErrorCode>('ROOM_LOCKED', 'The host locked this room to new players.');
}

/** A host hand-over code that is unknown, spent, expired or malformed: one answer for all. */
export function transferCodeInvalid(): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'TRANSFER_CODE_INVALID',
    'This hand-over code is not valid: it may have been used or have expired. Ask the host for a new one.',
    { errors: [{ field: 'transfer_code', message: 'Not a valid hand-over code' }] },
  );
}

/** A watch-link secret that is unknown, revoked or malformed, or whose room closed: one answer for all. */
export function spectatorLinkInvalid(): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'SPECTATOR_LINK_INVALID',
    'This watch link is not valid: the host may have revoked it. Ask the host for a new one.',
    { errors: [{ field: 'token', message: 'Not a valid watch link' }], challenge: { scheme: 'Bearer' } },
  );
}

/** A spectator tried something only players may do (roll, leave, claim codes): watching is read-only. */
export function spectatorReadOnly(): DiceryError {
  return new GatehouseError<DiceryErrorCode>(
    'SPECTATOR_READ_ONLY',
    'You are watching this room through a watch link: spectators cannot roll or act as players.',
  );
}
