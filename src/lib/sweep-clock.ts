/**
 * The time a periodic job deletes or closes by: the wall clock, except that it moves forward at
 * most `maxStepMs` between two readings (the job's interval, twice over). Read it once per run.
 *
 * The job's timer is monotonic; the wall clock is not. Stepped a year ahead (a bad RTC, an NTP
 * server that is wrong, `date -s` with a typo), one run of the hourly sweep deleted every session,
 * every refresh token, every spent single-use marker and the whole audit trail, all of which were
 * still current once the clock was put right: the spent markers gone, a consumed challenge or a
 * revoked client token passed again. Clamped, a job catches up with a clock that really moved (a
 * VM resumed after a week) over its next runs, a step back is followed at once (deleting less
 * is always safe), and a step forward that is undone in time deletes nothing that was live.
 */
export function createSweepClock(clock: () => number, maxStepMs: number): () => number {
  let last = clock();
  return () => {
    last = Math.min(clock(), last + maxStepMs);
    return last;
  };
}
