/**
 * How much one page of a room's rolls may hold in bytes of stored JSON, besides its count.
 *
 * @module
 */

/**
 * Most bytes of rolls (their stored JSON, UTF-8) one history or log page holds, measured in the
 * database (a running `sum(octet_length(…))` over the page's rows) so rows beyond it are never
 * sent to the server nor turned into strings there. Bytes are never fewer than the UTF-16 code
 * units the page costs in memory. A page is read,
 * parsed and serialised on the event loop, and the read limits count pages, not what is in them:
 * counted by rolls alone, a page of the largest rolls (`DICE_LIMITS.maxDrawsPerRoll` dice, ≈ 11 KB
 * each) was ≈ 2.2 MB and ≈ 110 ms of the event loop, so one address looping within its
 * `ROOM_READS_PER_MINUTE_PER_IP` took the whole core (red-team 2026-12g D1). Bounded by size, the
 * worst page costs about a twentieth of that, while a page of ordinary rolls (a few hundred
 * characters each) still holds its full count.
 */
export const ROOM_PAGE_MAX_BYTES = 128 * 1024;
