import { enforceAddressRateLimit } from '../../../http/index.js';
import type { DiceryContext } from './dicery-context.js';

/** Counts one attempt of `ip` at a room's code; throws 429 `TOO_MANY_REQUESTS` beyond the limit. */
export type RoomJoinLimit = (ip: string) => Promise<void>;

/**
 * The limit on attempts that name a room by its code (`ROOM_JOINS_PER_MINUTE`): joins, claims, a
 * watch link's exchange and a host hand-over. Every attempt counts, successful or not: a failed one
 * is what guessing codes looks like, and counting successes too keeps one address from filling
 * rooms with players. Per address and, for IPv6, per /48: per /64 alone one network guessed room
 * codes 65 536 times faster than the limit says (red-team 2026-12d I5; the hand-over still counted
 * per /64 alone until red-team 2026-12g D3). One budget for every route, so an attacker cannot add
 * one route's allowance to another's.
 */
export function createRoomJoinLimit(context: DiceryContext): RoomJoinLimit {
  const { settings } = context.dicery;
  const { counters, clock } = context.gatehouse;
  return (ip) =>
    enforceAddressRateLimit(
      counters,
      {
        prefix: 'room-join',
        max: settings.roomJoinsPerMinute,
        windowMs: 60_000,
        message: 'Too many attempts to join rooms; try again later.',
      },
      ip,
      clock,
    );
}
