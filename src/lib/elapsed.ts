/**
 * True when at least `ms` have passed from `since` to `now`, both read from the wall clock
 * (epoch ms), or when `now` is before `since`.
 *
 * The wall clock is not monotonic: NTP steps it, an operator sets it, a restored VM resumes with
 * an old one. After a step back, `now - since` is negative and would read as "just now" for as
 * long as the step (an hour back kept a cached user, a cooldown or a rate-limit window an hour
 * longer). The true age is unknown then, so it counts as elapsed: a cache re-reads, a cooldown
 * lets the next try through, a window closes. Every one of those is what the passing of time
 * would have done anyway; none of them extends a "no" beyond its bound.
 */
export function hasElapsed(now: number, since: number, ms: number): boolean {
  return now < since || now - since >= ms;
}
