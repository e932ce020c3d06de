/**
 * How much one page of a room's rolls may hold, in characters of stored JSON, besides its count.
 *
 * @module
 */

/**
 * Most characters of rolls (their stored JSON) one history or log page holds. A page is read,
 * parsed and serialised on the event loop, and the read limits count pages, not what is in them:
 * counted by rolls alone, a page of the largest rolls (`DICE_LIMITS.maxDrawsPerRoll` dice, ≈ 11 KB
 * each) was ≈ 2.2 MB and ≈ 110 ms of the event loop, so one address looping within its
 * `ROOM_READS_PER_MINUTE_PER_IP` took the whole core (red-team 2026-12g D1). Bounded by size, the
 * worst page costs about a twentieth of that, while a page of ordinary rolls (a few hundred
 * characters each) still holds its full count.
 */
export const ROOM_PAGE_MAX_CHARS = 128 * 1024;

/**
 * The longest prefix of `items` whose sizes add up to at most `budget`, and never less than the
 * first item (a page always moves forward, whatever one item's size).
 */
export function withinBudget<T>(items: readonly T[], sizeOf: (item: T) => number, budget: number): T[] {
  let used = 0;
  let count = 0;
  for (const item of items) {
    used += sizeOf(item);
    if (count > 0 && used > budget) break;
    count += 1;
  }
  return items.slice(0, count);
}
