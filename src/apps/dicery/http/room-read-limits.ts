import { enforceAddressRateLimit, enforceRateLimit } from '../../../http/index.js';
import type { DiceryContext } from './dicery-context.js';
import { roomOf } from './room-auth.js';

const MINUTE_MS = 60_000;

/** The read limits as the routes' descriptions state them (the settings' names, never their values). */
export const READ_LIMITS_DESCRIPTION =
  "Limited per caller (a player, the host's account, or one spectator: each watch cookie or spectator token on " +
  'its own) to `ROOM_READS_PER_MINUTE` page reads (snapshots, history and log together; a history or log page holds ' +
  'up to 128 KiB of rolls) a minute, per client IP ' +
  'to `ROOM_READS_PER_MINUTE_PER_IP` (an IPv6 /48 to four times that), and the spectators of one watch link together to ' +
  '`ROOM_READS_PER_MINUTE_PER_WATCH_LINK`; beyond any, 429 `TOO_MANY_REQUESTS` with `Retry-After`.';

/** Which budget a room read draws on: a page (history, log, snapshot) or a whole-log export. */
export type RoomReadKind = 'page' | 'export';

/** Charges one room read of `kind` to its caller, address and watch link; throws TOO_MANY_REQUESTS. */
export type RoomReadLimit = (request: Parameters<typeof roomOf>[0], kind: RoomReadKind) => Promise<void>;

/**
 * The read limits of a room's routes (the snapshot, history, log and export). Room reads cost the
 * database a page (or, for an export, the whole log) each: limited per caller and per address,
 * the address first so a refused client adds nothing to the caller's count. A player is one room's; a host's account is counted across all its rooms. A spectator
 * is counted on their own (one exchange of a watch link: a link shared with fifty people is
 * fifty budgets, so a heavy viewer never starves the others) and, after that, on the link's
 * audience as a whole, which keeps what one link (and, at `MAX_WATCH_LINKS_PER_ROOM` links, one
 * room's spectators) can read bounded.
 */
export function createRoomReadLimits(context: DiceryContext): RoomReadLimit {
  const { settings } = context.dicery;
  const { counters, clock } = context.gatehouse;
  return async (request, kind) => {
    const caller = roomOf(request);
    const spectator = caller.spectator ?? null;
    const who =
      caller.player !== null
        ? `player:${caller.player.id}`
        : spectator !== null
          ? `spectator:${spectator.sessionId}`
          : `host:${caller.host?.userId ?? ''}`;
    const [perCaller, perIp, perLink, message] =
      kind === 'page'
        ? [
            settings.roomReadsPerMinute,
            settings.roomReadsPerMinutePerIp,
            settings.roomReadsPerMinutePerWatchLink,
            'Too many room reads; slow down.',
          ]
        : [
            settings.roomExportsPerMinute,
            settings.roomExportsPerMinutePerIp,
            settings.roomExportsPerMinutePerWatchLink,
            'Too many exports; try again in a minute.',
          ];
    const hit = (key: string, max: number) =>
      enforceRateLimit(counters, { key, max, windowMs: MINUTE_MS, message }, clock);
    // Per address and, for IPv6, per /48 (as joins): callers are free to mint, so per /64 alone one
    // network would read 65 536 addresses' worth (red-team 2026-12g D1).
    await enforceAddressRateLimit(
      counters,
      { prefix: `room-${kind}`, max: perIp, windowMs: MINUTE_MS, message },
      request.ip,
      clock,
    );
    await hit(`room-${kind}:${who}`, perCaller);
    // After the spectator's own budget: a viewer refused there adds nothing to the link's count.
    if (spectator !== null) await hit(`room-${kind}:watch:${spectator.linkId}`, perLink);
  };
}
